// Reads Postfix policy delegation requests (SMTPD_POLICY_README): "name=value" lines
// ending in an empty line. Incremental over TCP chunks, bounded in size, and strict
// about what a real Postfix never sends, so garbage ends the connection instead of
// becoming a request.

export type PolicyRequest = ReadonlyMap<string, string>;

export class PolicyFrameError extends Error {
  override readonly name = 'PolicyFrameError';
}

const LF = 0x0a;

export class PolicyFrameParser {
  private buffered: Buffer | null = null;

  constructor(private readonly maxRequestBytes: number) {}

  /**
   * Feeds bytes; returns the complete requests they finish, in order.
   * Throws PolicyFrameError on input that is not a policy request.
   */
  push(chunk: Buffer): PolicyRequest[] {
    let buf = this.buffered === null ? chunk : Buffer.concat([this.buffered, chunk]);
    const out: PolicyRequest[] = [];
    let start = 0;
    for (;;) {
      const end = findBlankLine(buf, start);
      if (end < 0) break;
      if (end - start > this.maxRequestBytes) throw new PolicyFrameError(`request larger than ${this.maxRequestBytes} bytes`);
      out.push(parseRequest(buf, start, end));
      start = end + 2;
    }
    if (start < buf.length) {
      if (buf.length - start > this.maxRequestBytes) throw new PolicyFrameError(`request larger than ${this.maxRequestBytes} bytes`);
      buf = buf.subarray(start);
      checkCompleteLines(buf);
      this.buffered = Buffer.from(buf);
    } else {
      this.buffered = null;
    }
    return out;
  }

  /** Bytes received that do not yet form a complete request. */
  get pendingBytes(): number {
    return this.buffered?.length ?? 0;
  }
}

/** Index of the first LF of "\n\n" at or after `from`, or -1. */
function findBlankLine(buf: Buffer, from: number): number {
  let i = buf.indexOf(LF, from);
  while (i >= 0 && i + 1 < buf.length) {
    if (buf[i + 1] === LF) return i;
    i = buf.indexOf(LF, i + 1);
  }
  return -1;
}

/** Rejects an unfinished request early when a line it already finished cannot be valid (e.g. HTTP). */
function checkCompleteLines(buf: Buffer): void {
  const lastLf = buf.lastIndexOf(LF);
  if (lastLf < 0) return;
  for (let i = 0; i < lastLf; i++) {
    const c = buf[i]!;
    if (c < 0x20 && c !== LF && c !== 0x09 && c !== 0x0d) throw new PolicyFrameError(`control byte 0x${c.toString(16)} in request`);
  }
  let lineStart = 0;
  while (lineStart < lastLf) {
    const nl = buf.indexOf(LF, lineStart);
    const eq = buf.indexOf(0x3d, lineStart);
    if (eq < 0 || eq >= nl || eq === lineStart) throw new PolicyFrameError(`malformed line "${buf.toString('utf8', lineStart, Math.min(nl, lineStart + 60))}"`);
    lineStart = nl + 1;
  }
}

function parseRequest(buf: Buffer, start: number, end: number): PolicyRequest {
  const attrs = new Map<string, string>();
  if (end === start) throw new PolicyFrameError('empty request');
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    // Control bytes other than LF/TAB/CR never occur in a Postfix request.
    if (c < 0x20 && c !== LF && c !== 0x09 && c !== 0x0d) throw new PolicyFrameError(`control byte 0x${c.toString(16)} in request`);
  }
  const text = buf.toString('utf8', start, end);
  let lineStart = 0;
  while (lineStart <= text.length) {
    let nl = text.indexOf('\n', lineStart);
    if (nl < 0) nl = text.length;
    const lineEnd = nl > lineStart && text.charCodeAt(nl - 1) === 0x0d ? nl - 1 : nl;
    const eq = text.indexOf('=', lineStart);
    if (eq <= lineStart || eq >= lineEnd) throw new PolicyFrameError(`malformed line "${text.slice(lineStart, Math.min(lineEnd, lineStart + 60))}"`);
    // Name and value are cut straight from the request text (two strings per line, no
    // intermediate line string): this runs for every attribute of every request.
    const name = text.slice(lineStart, eq);
    // Postfix says: keep the first or the last of repeated attributes; we keep the first.
    if (!attrs.has(name)) attrs.set(name, text.slice(eq + 1, lineEnd));
    lineStart = nl + 1;
  }
  return attrs;
}
