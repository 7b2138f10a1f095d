// The Sendmail milter wire protocol, version 6, as Postfix and Sendmail speak it
// (docs/milter.md; reference: mta-protocols.md §2). Framing: `uint32 len | char cmd |
// data[len-1]`, big-endian, `len` counting the command byte. This file only turns
// bytes into packets and payloads into values and back; what a command means for a
// connection is session.ts's business.

// ---- commands (MTA → milter) ------------------------------------------------------------

export const SMFIC = {
  ABORT: 0x41, // 'A'
  BODY: 0x42, // 'B'
  CONNECT: 0x43, // 'C'
  MACRO: 0x44, // 'D'
  BODYEOB: 0x45, // 'E'
  HELO: 0x48, // 'H'
  QUIT_NC: 0x4b, // 'K'
  HEADER: 0x4c, // 'L'
  MAIL: 0x4d, // 'M'
  EOH: 0x4e, // 'N'
  OPTNEG: 0x4f, // 'O'
  QUIT: 0x51, // 'Q'
  RCPT: 0x52, // 'R'
  DATA: 0x54, // 'T'
  UNKNOWN: 0x55, // 'U'
} as const;

/** Command bytes an MTA sends. */
export const KNOWN_COMMANDS: ReadonlySet<number> = new Set(Object.values(SMFIC));

// ---- responses (milter → MTA) -----------------------------------------------------------

export const SMFIR = {
  ADDRCPT: 0x2b, // '+'
  DELRCPT: 0x2d, // '-'
  SHUTDOWN: 0x34, // '4'
  ACCEPT: 0x61, // 'a'
  REPLBODY: 0x62, // 'b'
  CONTINUE: 0x63, // 'c'
  DISCARD: 0x64, // 'd'
  CHGFROM: 0x65, // 'e'
  ADDHEADER: 0x68, // 'h'
  INSHEADER: 0x69, // 'i'
  CHGHEADER: 0x6d, // 'm'
  PROGRESS: 0x70, // 'p'
  QUARANTINE: 0x71, // 'q'
  REJECT: 0x72, // 'r'
  SKIP: 0x73, // 's'
  TEMPFAIL: 0x74, // 't'
  REPLYCODE: 0x79, // 'y'
} as const;

/** Response bytes a milter sends (for clients of the protocol: tests, benchmarks). */
export const KNOWN_RESPONSES: ReadonlySet<number> = new Set([...Object.values(SMFIR), 0x4f /* OPTNEG */]);

// ---- negotiation flags ------------------------------------------------------------------

/** Actions (modifications) a milter may ask for. */
export const SMFIF = {
  ADDHDRS: 0x001,
  CHGBODY: 0x002,
  ADDRCPT: 0x004,
  DELRCPT: 0x008,
  CHGHDRS: 0x010,
  QUARANTINE: 0x020,
  CHGFROM: 0x040,
  ADDRCPT_PAR: 0x080,
  SETSYMLIST: 0x100,
} as const;

/** Protocol steps: NO* = "don't send this event", NR_* = "I won't reply to it". */
export const SMFIP = {
  NOCONNECT: 0x1,
  NOHELO: 0x2,
  NOMAIL: 0x4,
  NORCPT: 0x8,
  NOBODY: 0x10,
  NOHDRS: 0x20,
  NOEOH: 0x40,
  NR_HDR: 0x80,
  NOUNKNOWN: 0x100,
  NODATA: 0x200,
  SKIP: 0x400,
  RCPT_REJ: 0x800,
  NR_CONN: 0x1000,
  NR_HELO: 0x2000,
  NR_MAIL: 0x4000,
  NR_RCPT: 0x8000,
  NR_DATA: 0x10000,
  NR_UNKN: 0x20000,
  NR_EOH: 0x40000,
  NR_BODY: 0x80000,
  HDR_LEADSPC: 0x100000,
} as const;

/** Stages of SMFIF_SETSYMLIST macro lists (libmilter SMFIM_*). */
export const SMFIM = {
  CONNECT: 0,
  HELO: 1,
  ENVFROM: 2,
  ENVRCPT: 3,
  DATA: 4,
  EOM: 5,
  EOH: 6,
} as const;

export const MILTER_VERSION = 6;

// ---- framing ----------------------------------------------------------------------------

export interface Packet {
  readonly cmd: number;
  readonly data: Buffer;
}

export class MilterFrameError extends Error {
  override readonly name = 'MilterFrameError';
}

/** Printable name of a command byte for log lines: "'B'" or "0x07". */
export function commandName(cmd: number): string {
  return cmd >= 0x21 && cmd <= 0x7e ? `'${String.fromCharCode(cmd)}'` : `0x${cmd.toString(16).padStart(2, '0')}`;
}

/**
 * Splits a byte stream into packets. Incremental over TCP chunks, bounded: a length
 * of 0 or above `maxPacketBytes` and an unknown command byte are errors at once (a
 * hostile or confused peer ends its connection before we buffer anything for it).
 */
export class MilterFrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(
    private readonly maxPacketBytes: number,
    private readonly known: ReadonlySet<number> = KNOWN_COMMANDS,
  ) {}

  /** Feeds bytes; returns the packets they complete, in order. Throws MilterFrameError. */
  push(chunk: Buffer): Packet[] {
    if (chunk.length === 0) return [];
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    let buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    const out: Packet[] = [];
    let at = 0;
    while (buf.length - at >= 5) {
      const len = buf.readUInt32BE(at);
      if (len === 0) throw new MilterFrameError('packet length 0');
      if (len > this.maxPacketBytes) throw new MilterFrameError(`packet length ${len} above the limit of ${this.maxPacketBytes} bytes`);
      const cmd = buf[at + 4]!;
      if (!this.known.has(cmd)) throw new MilterFrameError(`unknown command ${commandName(cmd)}`);
      if (buf.length - at < 4 + len) break;
      // Copy: the packet outlives the socket's chunk (headers and body are kept until EOM).
      out.push({ cmd, data: Buffer.from(buf.subarray(at + 5, at + 4 + len)) });
      at += 4 + len;
    }
    buf = buf.subarray(at);
    this.chunks = buf.length === 0 ? [] : [buf];
    this.buffered = buf.length;
    return out;
  }

  /** Bytes of an unfinished packet. */
  get pendingBytes(): number {
    return this.buffered;
  }
}

export function encodePacket(cmd: number, data?: Buffer): Buffer {
  const len = data === undefined ? 0 : data.length;
  const out = Buffer.allocUnsafe(5 + len);
  out.writeUInt32BE(len + 1, 0);
  out[4] = cmd;
  if (data !== undefined) data.copy(out, 5);
  return out;
}

// ---- payloads: MTA → milter -------------------------------------------------------------

/** A malformed payload: the packet was framed correctly but its content is not valid. */
export class MilterPayloadError extends Error {
  override readonly name = 'MilterPayloadError';
}

/** NUL-terminated strings until the end of `data`; the last one must be terminated. */
export function splitStrings(data: Buffer, what: string): string[] | MilterPayloadError {
  if (data.length === 0) return [];
  if (data[data.length - 1] !== 0) return new MilterPayloadError(`${what}: string not NUL-terminated`);
  const out: string[] = [];
  let start = 0;
  for (;;) {
    const nul = data.indexOf(0, start);
    out.push(data.toString('utf8', start, nul));
    start = nul + 1;
    if (start >= data.length) return out;
  }
}

export interface Optneg {
  readonly version: number;
  readonly actions: number;
  readonly protocol: number;
}

export function parseOptneg(data: Buffer): Optneg | MilterPayloadError {
  if (data.length < 12) return new MilterPayloadError(`OPTNEG: ${data.length} bytes, need 12`);
  return { version: data.readUInt32BE(0), actions: data.readUInt32BE(4), protocol: data.readUInt32BE(8) };
}

export interface MacroPacket {
  /** The command letter the macros belong to ('C', 'M', 'E', ...). */
  readonly stage: number;
  readonly macros: readonly (readonly [string, string])[];
}

export function parseMacro(data: Buffer): MacroPacket | MilterPayloadError {
  if (data.length < 1) return new MilterPayloadError('MACRO: no stage byte');
  const strings = splitStrings(data.subarray(1), 'MACRO');
  if (strings instanceof MilterPayloadError) return strings;
  const macros: [string, string][] = [];
  // An odd trailing name without value is ignored, like libmilter does.
  for (let i = 0; i + 1 < strings.length; i += 2) macros.push([strings[i]!, strings[i + 1]!]);
  return { stage: data[0]!, macros };
}

export type Family = 'unknown' | 'unix' | 'inet' | 'inet6';

export interface ConnectInfo {
  readonly hostname: string;
  readonly family: Family;
  readonly port: number;
  /** Address text ("198.51.100.7", "2001:db8::1" — Sendmail's "IPv6:" prefix removed), or a socket path. */
  readonly address: string;
}

export function parseConnect(data: Buffer): ConnectInfo | MilterPayloadError {
  const nul = data.indexOf(0);
  if (nul < 0 || nul + 1 >= data.length) return new MilterPayloadError('CONNECT: truncated');
  const hostname = data.toString('utf8', 0, nul);
  const fam = data[nul + 1]!;
  if (fam === 0x55 /* U */) return { hostname, family: 'unknown', port: 0, address: '' };
  const family: Family | null = fam === 0x34 ? 'inet' : fam === 0x36 ? 'inet6' : fam === 0x4c ? 'unix' : null;
  if (family === null) return new MilterPayloadError(`CONNECT: unknown family ${commandName(fam)}`);
  if (data.length < nul + 5 || data[data.length - 1] !== 0) return new MilterPayloadError('CONNECT: truncated address');
  const port = data.readUInt16BE(nul + 2);
  let address = data.toString('utf8', nul + 4, data.indexOf(0, nul + 4));
  if (family === 'inet6' && address.toLowerCase().startsWith('ipv6:')) address = address.slice(5);
  return { hostname, family, port, address };
}

export function parseHeader(data: Buffer): readonly [string, string] | MilterPayloadError {
  const s = splitStrings(data, 'HEADER');
  if (s instanceof MilterPayloadError) return s;
  if (s.length !== 2) return new MilterPayloadError(`HEADER: ${s.length} strings, need name and value`);
  return [s[0]!, s[1]!];
}

/** MAIL/RCPT: the address as typed (usually "<a@b>"), then ESMTP arguments. */
export function parseArgs(data: Buffer, what: string): readonly string[] | MilterPayloadError {
  const s = splitStrings(data, what);
  if (s instanceof MilterPayloadError) return s;
  if (s.length === 0) return new MilterPayloadError(`${what}: no address`);
  return s;
}

// ---- payloads: milter → MTA -------------------------------------------------------------

export interface OptnegReply extends Optneg {
  /** SETSYMLIST lists: [stage (SMFIM), "name1 name2"], sent after the 12 option bytes. */
  readonly symlists?: readonly (readonly [number, string])[];
}

export function encodeOptneg(reply: OptnegReply): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.allocUnsafe(12);
  head.writeUInt32BE(reply.version >>> 0, 0);
  head.writeUInt32BE(reply.actions >>> 0, 4);
  head.writeUInt32BE(reply.protocol >>> 0, 8);
  parts.push(head);
  for (const [stage, names] of reply.symlists ?? []) {
    const s = Buffer.allocUnsafe(4);
    s.writeUInt32BE(stage, 0);
    parts.push(s, Buffer.from(`${names}\0`, 'utf8'));
  }
  return encodePacket(SMFIC.OPTNEG, Buffer.concat(parts));
}

function nulStrings(...strings: string[]): Buffer {
  return Buffer.from(strings.map((s) => `${s}\0`).join(''), 'utf8');
}

export const CONTINUE: Buffer = encodePacket(SMFIR.CONTINUE);
export const ACCEPT: Buffer = encodePacket(SMFIR.ACCEPT);
export const TEMPFAIL: Buffer = encodePacket(SMFIR.TEMPFAIL);
export const REJECT: Buffer = encodePacket(SMFIR.REJECT);
export const DISCARD: Buffer = encodePacket(SMFIR.DISCARD);
export const SKIP: Buffer = encodePacket(SMFIR.SKIP);

/** SMFIR_REPLYCODE with the complete text ("550 5.7.1 text"); see formatReply for the checks. */
export function encodeReplyCode(reply: string): Buffer {
  return encodePacket(SMFIR.REPLYCODE, nulStrings(reply));
}

export function encodeAddHeader(name: string, value: string): Buffer {
  return encodePacket(SMFIR.ADDHEADER, nulStrings(name, value));
}

export function encodeQuarantine(reason: string): Buffer {
  return encodePacket(SMFIR.QUARANTINE, nulStrings(reason));
}

/** Longest reply text we send (libmilter's smfi_setreply allows 980 characters). */
export const MAX_REPLY_TEXT_BYTES = 900;

/**
 * A one-line SMTP reply for SMFIR_REPLYCODE that Postfix and Sendmail accept: a 4xx or
 * 5xx code, an RFC 3463 code of the same class (else `<class>.7.1`), no control
 * characters, `%` doubled (both MTAs treat the text as a format), bounded length
 * (cut on a UTF-8 character boundary).
 */
export function formatReply(code: number, enhanced: string | undefined, text: string | undefined): string | Error {
  if (!Number.isInteger(code) || code < 400 || code > 599) return new Error(`reply code ${code} is not 4xx or 5xx`);
  const cls = String(code)[0]!;
  const xcode = enhanced !== undefined && /^[45]\.\d{1,3}\.\d{1,3}$/.test(enhanced) && enhanced[0] === cls ? enhanced : `${cls}.7.1`;
  let clean = (text ?? '').replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  let bytes = Buffer.from(clean, 'utf8');
  if (bytes.length > MAX_REPLY_TEXT_BYTES) {
    let end = MAX_REPLY_TEXT_BYTES;
    while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
    clean = bytes.toString('utf8', 0, end).trimEnd();
    bytes = Buffer.from(clean, 'utf8');
  }
  const escaped = clean.replaceAll('%', '%%');
  return escaped === '' ? `${code} ${xcode}` : `${code} ${xcode} ${escaped}`;
}
