import { decodeBytes, decodeGuess } from './charset.ts';

// A small, synchronous MIME reader for classification (RFC 5322, 2045-2047, 2231).
// It is written here rather than taken from npm because the classifier needs only the
// decoded text and the message's structure, at thousands of messages per second on one
// core, synchronously inside the engine's decision: mailparser is stream-based and builds
// attachment objects, postal-mime is async and browser-first. This reader works
// on one latin1 view of the bytes, decodes only text parts, and bounds its work:
// at most MAX_PARTS leaves, MAX_DEPTH nesting, MAX_TEXT bytes of text per part.

const MAX_PARTS = 64;
const MAX_DEPTH = 8;
const MAX_TEXT = 256 * 1024;

export type HeaderField = readonly [name: string, value: string];

export interface MimeLeaf {
  /** Lower-case media type, e.g. "text/plain". */
  readonly type: string;
  readonly charset: string | null;
  /** Lower-case Content-Transfer-Encoding, "7bit" when absent. */
  readonly encoding: string;
  readonly filename: string | null;
  readonly attachment: boolean;
  /** Size of the encoded body in bytes. */
  readonly size: number;
  /** Decoded text for text/* leaves (at most MAX_TEXT bytes of it), else null. */
  readonly text: string | null;
}

export interface ParsedMail {
  /** Top-level header fields in order, names as written, values unfolded and decoded. */
  readonly headers: readonly HeaderField[];
  readonly leaves: readonly MimeLeaf[];
  /** Number of multipart containers. */
  readonly multiparts: number;
  /** True when limits cut the structure short. */
  readonly truncated: boolean;
}

/** First value of a header field (case-insensitive name), or undefined. */
export function header(fields: readonly HeaderField[], name: string): string | undefined {
  const n = name.toLowerCase();
  for (const f of fields) if (f[0].length === n.length && f[0].toLowerCase() === n) return f[1];
  return undefined;
}

// ---------------------------------------------------------------------------
// Encodings

const HEX: Int8Array = (() => {
  const t = new Int8Array(256).fill(-1);
  for (let i = 0; i < 10; i++) t[48 + i] = i;
  for (let i = 0; i < 6; i++) {
    t[65 + i] = 10 + i;
    t[97 + i] = 10 + i;
  }
  return t;
})();

/** Quoted-printable (latin1 string of the encoded body) to bytes. `q` is RFC 2047's Q form. */
export function decodeQuotedPrintable(s: string, q = false): Buffer {
  const out = Buffer.allocUnsafe(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 61 /* = */) {
      const h1 = HEX[s.charCodeAt(i + 1) & 255]!;
      const h2 = HEX[s.charCodeAt(i + 2) & 255]!;
      if (i + 2 < s.length && h1 >= 0 && h2 >= 0) {
        out[n++] = (h1 << 4) | h2;
        i += 2;
        continue;
      }
      // Soft line break: "=" then optional spaces then CRLF or LF.
      let j = i + 1;
      while (j < s.length && (s.charCodeAt(j) === 32 || s.charCodeAt(j) === 9)) j++;
      if (s.charCodeAt(j) === 13) j++;
      if (s.charCodeAt(j) === 10) {
        i = j;
        continue;
      }
      out[n++] = c;
    } else if (q && c === 95 /* _ */) {
      out[n++] = 32;
    } else {
      out[n++] = c & 255;
    }
  }
  return out.subarray(0, n);
}

function transferDecode(body: string, encoding: string): Buffer {
  if (encoding === 'base64') return Buffer.from(body, 'base64');
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(body);
  return Buffer.from(body, 'latin1');
}

const ENCODED_WORD = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;
const BETWEEN_WORDS = /^[ \t\r\n]*$/;

/** Decodes RFC 2047 encoded words; whitespace between adjacent encoded words is dropped. */
export function decodeEncodedWords(value: string): string {
  if (!value.includes('=?')) return value;
  let out = '';
  let last = 0;
  let prevEnd = -1;
  ENCODED_WORD.lastIndex = 0;
  for (let m = ENCODED_WORD.exec(value); m !== null; m = ENCODED_WORD.exec(value)) {
    const gap = value.slice(last, m.index);
    if (!(prevEnd === m.index - gap.length && prevEnd >= 0 && BETWEEN_WORDS.test(gap))) out += gap;
    const charset = m[1]!.split('*')[0]!; // RFC 2231 language suffix
    const bytes = m[2] === 'b' || m[2] === 'B' ? Buffer.from(m[3]!, 'base64') : decodeQuotedPrintable(m[3]!, true);
    out += decodeBytes(bytes, charset);
    last = m.index + m[0].length;
    prevEnd = last;
  }
  return out + value.slice(last);
}

function has8bit(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return true;
  return false;
}

/** A latin1 header value to text: raw 8-bit bytes guessed (UTF-8, Shift_JIS, ...), then RFC 2047. */
function decodeHeaderValue(raw: string): string {
  const v = has8bit(raw) || raw.includes('\x1b') ? decodeGuess(Buffer.from(raw, 'latin1')) : raw;
  return decodeEncodedWords(v);
}

// ---------------------------------------------------------------------------
// Header block

/** Index just past the blank line that ends the header block, and where the block ends. */
function splitHeaderBlock(s: string, start: number, end: number): { headerEnd: number; bodyStart: number } {
  let i = start;
  // A part may begin with its blank line directly (no headers).
  if (s.charCodeAt(i) === 10) return { headerEnd: i, bodyStart: i + 1 };
  if (s.charCodeAt(i) === 13 && s.charCodeAt(i + 1) === 10) return { headerEnd: i, bodyStart: i + 2 };
  for (;;) {
    const nl = s.indexOf('\n', i);
    if (nl < 0 || nl >= end) return { headerEnd: end, bodyStart: end };
    const next = nl + 1;
    if (s.charCodeAt(next) === 10) return { headerEnd: next, bodyStart: next + 1 };
    if (s.charCodeAt(next) === 13 && s.charCodeAt(next + 1) === 10) return { headerEnd: next, bodyStart: next + 2 };
    i = next;
  }
}

function parseHeaderFields(s: string, start: number, end: number, decode: boolean): HeaderField[] {
  const fields: HeaderField[] = [];
  let name = '';
  let value = '';
  const flush = (): void => {
    if (name !== '') fields.push([name, decode ? decodeHeaderValue(value.trim()) : value.trim()]);
    name = '';
    value = '';
  };
  let i = start;
  while (i < end && fields.length < 500) {
    let nl = s.indexOf('\n', i);
    if (nl < 0 || nl > end) nl = end;
    let line = s.slice(i, nl);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    i = nl + 1;
    const c = line.charCodeAt(0);
    if (c === 32 || c === 9) {
      if (name !== '') value += ' ' + line.trim();
      continue;
    }
    flush();
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    name = line.slice(0, colon).trim();
    value = line.slice(colon + 1);
  }
  flush();
  return fields;
}

export interface ContentType {
  readonly type: string;
  readonly params: Readonly<Record<string, string>>;
}

/** Bytes of a %-encoded RFC 2231 value. */
function percentBytes(v: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 37 && i + 2 < v.length && HEX[v.charCodeAt(i + 1) & 255]! >= 0 && HEX[v.charCodeAt(i + 2) & 255]! >= 0) {
      out.push((HEX[v.charCodeAt(i + 1) & 255]! << 4) | HEX[v.charCodeAt(i + 2) & 255]!);
      i += 2;
    } else out.push(c & 255);
  }
  return Buffer.from(out);
}

/** Parses a Content-Type or Content-Disposition value: type and lower-cased parameter names (RFC 2045, 2231). */
export function parseParams(value: string): ContentType {
  const semi = value.indexOf(';');
  const type = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  const params: Record<string, string> = {};
  if (semi < 0) return { type, params };
  const re = /;\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g;
  re.lastIndex = semi;
  const segments: Record<string, { i: number; ext: boolean; v: string }[]> = {};
  for (let m = re.exec(value); m !== null; m = re.exec(value)) {
    const key = m[1]!.toLowerCase();
    let v = m[2]!.trim();
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    const star = /^([^*]+)\*(?:(\d+)(\*)?)?$/.exec(key);
    if (star === null) {
      params[key] ??= v;
      continue;
    }
    // name*=charset'lang'value | name*N=value | name*N*=value
    const ext = star[2] === undefined || star[3] !== undefined;
    (segments[star[1]!] ??= []).push({ i: star[2] === undefined ? 0 : Number(star[2]), ext, v });
  }
  for (const [k, segs] of Object.entries(segments)) {
    segs.sort((a, b) => a.i - b.i);
    let charset: string | null = null;
    const bytes: Buffer[] = [];
    for (const [n, seg] of segs.entries()) {
      let v = seg.v;
      if (seg.ext && n === 0) {
        const q1 = v.indexOf("'");
        const q2 = q1 >= 0 ? v.indexOf("'", q1 + 1) : -1;
        if (q2 >= 0) {
          charset = v.slice(0, q1) || null;
          v = v.slice(q2 + 1);
        }
      }
      bytes.push(seg.ext ? percentBytes(v) : Buffer.from(v, 'latin1'));
    }
    params[k] = decodeBytes(Buffer.concat(bytes), charset ?? 'utf-8');
  }
  return { type, params };
}

// ---------------------------------------------------------------------------
// Structure

interface Walk {
  readonly s: string;
  readonly leaves: MimeLeaf[];
  multiparts: number;
  truncated: boolean;
}

function walkEntity(w: Walk, fields: readonly HeaderField[], bodyStart: number, end: number, depth: number, defaultType: string): void {
  if (w.leaves.length >= MAX_PARTS) {
    w.truncated = true;
    return;
  }
  const ctRaw = header(fields, 'content-type');
  const ct = ctRaw !== undefined ? parseParams(ctRaw) : { type: defaultType, params: {} as Record<string, string> };
  const type = ct.type.includes('/') ? ct.type : defaultType;
  const encoding = (header(fields, 'content-transfer-encoding') ?? '7bit').trim().toLowerCase();
  if (type.startsWith('multipart/') && depth < MAX_DEPTH && ct.params['boundary']) {
    w.multiparts++;
    walkMultipart(w, ct.params['boundary'], bodyStart, end, depth, type === 'multipart/digest' ? 'message/rfc822' : 'text/plain');
    return;
  }
  if (type === 'message/rfc822' && depth < MAX_DEPTH && (encoding === '7bit' || encoding === '8bit' || encoding === 'binary')) {
    const { headerEnd, bodyStart: inner } = splitHeaderBlock(w.s, bodyStart, end);
    walkEntity(w, parseHeaderFields(w.s, bodyStart, headerEnd, true), inner, end, depth + 1, 'text/plain');
    return;
  }
  const disp = header(fields, 'content-disposition');
  const dp = disp !== undefined ? parseParams(disp) : null;
  const filename = dp?.params['filename'] ?? ct.params['name'] ?? null;
  const attachment = dp?.type === 'attachment' || (filename !== null && !type.startsWith('text/'));
  let text: string | null = null;
  if (type.startsWith('text/') && !attachment) {
    let body = w.s.slice(bodyStart, end);
    // Base64 grows 4/3; quoted-printable varies: cut the encoded form generously.
    if (body.length > MAX_TEXT * 1.4) {
      body = body.slice(0, MAX_TEXT * 1.4);
      w.truncated = true;
    }
    const bytes = transferDecode(body, encoding);
    text = decodeBytes(bytes.length > MAX_TEXT ? bytes.subarray(0, MAX_TEXT) : bytes, ct.params['charset'] ?? null);
  }
  w.leaves.push({ type, charset: ct.params['charset']?.toLowerCase() ?? null, encoding, filename: filename !== null ? decodeEncodedWords(filename) : null, attachment, size: end - bodyStart, text });
}

function walkMultipart(w: Walk, boundary: string, start: number, end: number, depth: number, childType: string): void {
  const s = w.s;
  const delim = '--' + boundary;
  // Find each delimiter line: at the start of the body or after a line break.
  let pos = s.indexOf(delim, start);
  while (pos >= 0 && pos < end && pos !== start && s.charCodeAt(pos - 1) !== 10) pos = s.indexOf(delim, pos + 1);
  while (pos >= 0 && pos < end) {
    let after = pos + delim.length;
    if (s.charCodeAt(after) === 45 && s.charCodeAt(after + 1) === 45) return; // closing delimiter
    const nl = s.indexOf('\n', after);
    if (nl < 0 || nl >= end) return;
    after = nl + 1;
    let next = s.indexOf('\n' + delim, after - 1);
    const partEnd = next < 0 || next >= end ? end : next > 0 && s.charCodeAt(next - 1) === 13 ? next - 1 : next;
    const { headerEnd, bodyStart } = splitHeaderBlock(s, after, partEnd);
    walkEntity(w, parseHeaderFields(s, after, headerEnd, true), bodyStart, partEnd, depth + 1, childType);
    if (next < 0 || next >= end) return;
    if (w.leaves.length >= MAX_PARTS) {
      w.truncated = true;
      return;
    }
    pos = next + 1;
  }
}

/** Parses a whole message. Never throws on malformed input; limits are documented above. */
export function parseMail(raw: Buffer | string): ParsedMail {
  const s = typeof raw === 'string' ? raw : raw.toString('latin1');
  const { headerEnd, bodyStart } = splitHeaderBlock(s, 0, s.length);
  const headers = parseHeaderFields(s, 0, headerEnd, true);
  const w: Walk = { s, leaves: [], multiparts: 0, truncated: false };
  walkEntity(w, headers, bodyStart, s.length, 0, 'text/plain');
  return { headers, leaves: w.leaves, multiparts: w.multiparts, truncated: w.truncated };
}

/** Strips a leading mbox envelope line ("From sender date") from a stored message. */
export function stripMboxFrom(raw: Buffer): Buffer {
  if (raw.length >= 5 && raw.toString('latin1', 0, 5) === 'From ') {
    const nl = raw.indexOf(10);
    return nl < 0 ? Buffer.alloc(0) : raw.subarray(nl + 1);
  }
  return raw;
}
