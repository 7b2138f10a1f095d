import { createHmac } from 'node:crypto';
import { senderId, type EpochMs, type MessageEvent, type SenderId, type Verdict } from '../../engine/types.ts';
import { formatReply } from './codec.ts';
import type { EomAction, MilterMessage } from './session.ts';

// A finished milter transaction to an engine message event, and the verdict back to
// end-of-message actions. No policy here: which pool, whether to refuse, and with
// which words is the engine's; this file only spells it in milter terms.

export interface TranslateOptions {
  /** Context for the engine (per-listener rules), like the policy door's policy_context. */
  readonly context?: string;
  /**
   * False (default) when the policy server already counted the message at
   * END-OF-MESSAGE: the engine then judges content without adding to the counters.
   */
  readonly countMessages: boolean;
  /** Header carrying the verdict's pool for milter_header_checks (e.g. "X-Fumidai-Pool"). */
  readonly poolHeader: string;
  /** Header carrying the opaque sender token, or null for none. */
  readonly senderTokenHeader: string | null;
  readonly senderTokenSecret: string | null;
}

/** "<a@b>" → "a@b"; "<>" → "". */
export function stripAngles(path: string): string {
  const t = path.trim();
  return t.startsWith('<') && t.endsWith('>') ? t.slice(1, -1) : t;
}

/**
 * The address of a From header value: the one in angle brackets, else the bare
 * addr-spec; comments and display names dropped; lower-cased domain. Undefined when
 * the value holds no address. With several (a group or a list), the first.
 */
export function headerFromAddress(value: string): string | undefined {
  // Drop comments "(...)" and quoted display names, which may contain "<" or "@".
  const text = value.replace(/"(?:[^"\\]|\\.)*"/g, ' ').replace(/\((?:[^()\\]|\\.)*\)/g, ' ');
  const angle = /<\s*([^<>\s]+@[^<>\s]+)\s*>/.exec(text);
  const addr = angle?.[1] ?? /([^\s<>,;:]+@[^\s<>,;:]+)/.exec(text)?.[1];
  if (addr === undefined) return undefined;
  const at = addr.lastIndexOf('@');
  return `${addr.slice(0, at)}@${addr.slice(at + 1).toLowerCase()}`;
}

function nonEmpty(v: string | undefined): string | null {
  return v === undefined || v === '' ? null : v;
}

/** The client address: {client_addr}, else the CONNECT packet's (IP families only). */
function clientIp(msg: MilterMessage): string | null {
  const macro = nonEmpty(msg.macro('client_addr'));
  if (macro !== null) return macro.toLowerCase().startsWith('ipv6:') ? macro.slice(5) : macro;
  const c = msg.connect;
  return c !== null && (c.family === 'inet' || c.family === 'inet6') && c.address !== '' ? c.address : null;
}

export function toEvent(msg: MilterMessage, t: EpochMs, options: TranslateOptions, connectionId: string): MessageEvent {
  const login = nonEmpty(msg.macro('auth_authen'));
  const fromHeader = msg.headers.find(([name]) => name.toLowerCase() === 'from');
  const headerFrom = fromHeader === undefined ? undefined : headerFromAddress(fromHeader[1]);
  const queueId = nonEmpty(msg.macro('i'));
  return {
    kind: 'message',
    t,
    door: 'milter',
    sender: login === null ? null : senderId(login),
    ip: clientIp(msg),
    ...(options.context !== undefined ? { context: options.context } : {}),
    mailFrom: stripAngles(msg.mailFrom),
    recipientCount: msg.recipients.length,
    size: msg.size,
    transaction: queueId ?? `${connectionId}.${msg.seq}`,
    ...(headerFrom !== undefined ? { headerFrom } : {}),
    headers: msg.headers,
    raw: msg.raw,
    ...(msg.truncated ? { rawTruncated: true } : {}),
    ...(options.countMessages ? {} : { alreadyCounted: true }),
  };
}

/**
 * The sender token: HMAC-SHA256(secret, sender ID), first 16 bytes, hex. Stable per
 * ID, so an abuse desk can say "the same sender again" and the provider can find the
 * ID by recomputing; not reversible without the secret.
 */
export function senderToken(secret: string, sender: SenderId): string {
  return createHmac('sha256', secret).update(sender, 'utf8').digest().subarray(0, 16).toString('hex');
}

/** Header values we write: one line, no control characters. */
function headerValue(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
}

const DEFAULT_CODES = { defer: { code: 451, enhanced: '4.7.1' }, reject: { code: 550, enhanced: '5.7.1' } } as const;

/** The end-of-message actions for a verdict on `event`. */
export function toEomActions(v: Verdict, event: MessageEvent, options: TranslateOptions): EomAction[] {
  switch (v.action) {
    case 'defer':
    case 'reject': {
      const d = DEFAULT_CODES[v.action];
      const cls = v.action === 'defer' ? 4 : 5;
      // The code class must match the action; an inconsistent verdict gets the default code.
      const code = v.code !== undefined && Math.floor(v.code / 100) === cls ? v.code : d.code;
      const text = formatReply(code, v.enhanced, v.text);
      return [text instanceof Error ? { type: v.action === 'defer' ? 'tempfail' : 'reject' } : { type: 'reply', text }];
    }
    case 'discard':
      return [{ type: 'discard' }];
    case 'accept':
    case 'hold': {
      const out: EomAction[] = [];
      if (v.action === 'hold') {
        const why = v.reasons.map((r) => `${r.module}/${r.rule}`).join(', ');
        // Postfix keeps 100 characters of the reason (postqueue shows it).
        out.push({ type: 'quarantine', reason: headerValue(`fumidai: ${why || 'hold'}`).slice(0, 100) });
      }
      if (v.pool !== undefined && headerValue(v.pool) !== '') out.push({ type: 'addHeader', name: options.poolHeader, value: headerValue(v.pool) });
      if (options.senderTokenHeader !== null && options.senderTokenSecret !== null && event.sender !== null) {
        out.push({ type: 'addHeader', name: options.senderTokenHeader, value: senderToken(options.senderTokenSecret, event.sender) });
      }
      out.push({ type: 'continue' });
      return out;
    }
  }
}
