// Bytes to text for mail: charset labels as they occur in real messages, and a guess
// for unlabelled 8-bit text (common in Japanese mail: raw Shift_JIS or UTF-8 headers).
// Node's TextDecoder (full ICU) knows ISO-2022-JP, Shift_JIS, EUC-JP, GB18030, Big5,
// EUC-KR and the single-byte sets; this file only maps the labels it does not.

const ALIASES: Readonly<Record<string, string>> = {
  cp932: 'shift_jis',
  'x-ms-cp932': 'shift_jis',
  'windows-932': 'shift_jis',
  'shift-jis': 'shift_jis',
  'x-euc-jp': 'euc-jp',
  'iso-2022-jp-1': 'iso-2022-jp',
  'iso-2022-jp-2': 'iso-2022-jp',
  'iso-2022-jp-3': 'iso-2022-jp',
  'iso-2022-jp-ms': 'iso-2022-jp',
  'cp50220': 'iso-2022-jp',
  'cp50221': 'iso-2022-jp',
  'utf8': 'utf-8',
  'ansi_x3.4-1968': 'us-ascii',
  ascii: 'us-ascii',
  'ks_c_5601-1987': 'euc-kr',
  'cp936': 'gbk',
  'cp1252': 'windows-1252',
  'cp1251': 'windows-1251',
  'cp850': 'windows-1252',
  'iso8859-1': 'iso-8859-1',
  'iso-8859-8-i': 'iso-8859-8',
};

const decoders = new Map<string, TextDecoder | null>();

function decoderFor(label: string): TextDecoder | null {
  let d = decoders.get(label);
  if (d !== undefined) return d;
  try {
    d = new TextDecoder(ALIASES[label] ?? label);
  } catch {
    d = null;
  }
  if (decoders.size < 256) decoders.set(label, d);
  return d;
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });
const fatalSjis = new TextDecoder('shift_jis', { fatal: true });
const fatalEuc = new TextDecoder('euc-jp', { fatal: true });
const latin1 = new TextDecoder('windows-1252');
const iso2022jp = new TextDecoder('iso-2022-jp');

function isAscii(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i]! >= 0x80 || b[i] === 0x1b) return false;
  return true;
}

function hasEscape(b: Uint8Array): boolean {
  // ESC $ B / ESC $ @ / ESC ( J: ISO-2022-JP shifts
  for (let i = 0; i + 2 < b.length; i++) if (b[i] === 0x1b && (b[i + 1] === 0x24 || b[i + 1] === 0x28)) return true;
  return false;
}

/** Decodes unlabelled bytes: ASCII, ISO-2022-JP, UTF-8, EUC-JP or Shift_JIS, else Windows-1252. */
export function decodeGuess(b: Uint8Array): string {
  if (hasEscape(b)) return iso2022jp.decode(b);
  if (isAscii(b)) return latin1.decode(b);
  try {
    return fatalUtf8.decode(b);
  } catch {
    /* not UTF-8 */
  }
  // EUC-JP uses 0xA1-0xFE for both bytes; Shift_JIS lead bytes include 0x81-0x9F.
  let euc = true;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c >= 0x80 && c < 0xa1 && c !== 0x8e && c !== 0x8f) {
      euc = false;
      break;
    }
  }
  try {
    return (euc ? fatalEuc : fatalSjis).decode(b);
  } catch {
    /* try the other one */
  }
  try {
    return (euc ? fatalSjis : fatalEuc).decode(b);
  } catch {
    return latin1.decode(b);
  }
}

/** Decodes bytes in the labelled charset; unknown or missing labels fall back to a guess. */
export function decodeBytes(b: Uint8Array, charset: string | null): string {
  if (b.length === 0) return '';
  const label = charset?.trim().toLowerCase() ?? '';
  if (label === '' || label === 'us-ascii' || label === 'unknown-8bit' || label === 'x-unknown' || label === 'default') return decodeGuess(b);
  const d = decoderFor(label);
  if (d === null) return decodeGuess(b);
  // Mislabelled UTF-8 as ISO-8859-1 is common; a valid multi-byte UTF-8 sequence wins.
  if ((label === 'iso-8859-1' || label === 'windows-1252') && !isAscii(b)) {
    try {
      return fatalUtf8.decode(b);
    } catch {
      /* really Latin-1 */
    }
  }
  return d.decode(b);
}

/** Whether a label names a charset this Node can decode. */
export function knownCharset(label: string): boolean {
  return decoderFor(label.trim().toLowerCase()) !== null;
}
