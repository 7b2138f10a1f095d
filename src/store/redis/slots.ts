// Redis Cluster key slots: CRC16 (XMODEM) of the key's hash tag, modulo 16384, and a
// table of short hash tags, one per slot, so that a key can be placed in the same slot as
// another (the per-slot activity index lives in each sender's slot).

export const SLOTS = 16384;

const TABLE = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let c = i << 8;
  for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
  TABLE[i] = c;
}

function crc16(s: string): number {
  const bytes = Buffer.from(s, 'utf8');
  let crc = 0;
  for (const b of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ b) & 0xff]!;
  return crc;
}

/** The part of a key Redis Cluster hashes: the first non-empty {...}, else the whole key. */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

export function keySlot(key: string): number {
  return crc16(hashTag(key)) % SLOTS;
}

let tags: string[] | null = null;

/** A short string whose slot is `slot` (usable as a hash tag). */
export function tagForSlot(slot: number): string {
  if (tags === null) {
    const t = new Array<string>(SLOTS);
    let found = 0;
    for (let i = 0; found < SLOTS; i++) {
      const cand = `x${i.toString(36)}`;
      const s = crc16(cand) % SLOTS;
      if (t[s] === undefined) {
        t[s] = cand;
        found++;
      }
    }
    tags = t;
  }
  return tags[slot]!;
}
