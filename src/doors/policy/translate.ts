import { senderId, type EngineEvent, type EpochMs, type Verdict } from '../../engine/types.ts';
import type { PolicyRequest } from './frame-parser.ts';

// Policy requests to engine events, and verdicts back to Postfix actions. The
// transaction bookkeeping (how many recipients of the current message were already
// admitted) is protocol state of the connection, not policy.

export interface PolicyTransaction {
  instance: string;
  admitted: number;
  /** RCPT requests of the transaction judged so far. */
  tried: number;
}

/** The engine event for a request, or null for stages fumidai does not judge (answered DUNNO). */
export function toEvent(
  req: PolicyRequest,
  t: EpochMs,
  tx: PolicyTransaction,
  defaultContext: string | undefined,
): EngineEvent | null {
  const state = req.get('protocol_state');
  if (state !== 'RCPT' && state !== 'END-OF-MESSAGE') return null;
  const login = req.get('sasl_username') ?? '';
  const sender = login === '' ? null : senderId(login);
  const ip = nonEmpty(req.get('client_address'));
  const context = nonEmpty(req.get('policy_context')) ?? defaultContext;
  const instance = req.get('instance') ?? '';
  if (instance !== tx.instance) {
    tx.instance = instance;
    tx.admitted = 0;
    tx.tried = 0;
  }
  const mailFrom = req.get('sender') ?? '';
  // Object literals of one fixed shape each (no spreading): this runs for every request.
  if (state === 'RCPT') {
    return { kind: 'rcpt', t, door: 'policy', sender, ip, context, mailFrom, recipient: req.get('recipient') ?? '', pendingRecipients: tx.admitted, triedRecipients: tx.tried++, transaction: instance };
  }
  return {
    kind: 'message',
    t,
    door: 'policy',
    sender,
    ip,
    context,
    mailFrom,
    recipientCount: toCount(req.get('recipient_count')),
    size: toCount(req.get('size')),
    transaction: instance,
  };
}

function nonEmpty(v: string | undefined): string | null {
  return v === undefined || v === '' ? null : v;
}

function toCount(v: string | undefined): number {
  const n = v === undefined ? 0 : Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/** A reply line Postfix accepts: one line, no control characters. */
function clean(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
}

/** The `action=` value for a verdict. Accept is DUNNO: later restrictions still apply. */
export function toAction(v: Verdict): string {
  switch (v.action) {
    case 'accept':
      return 'DUNNO';
    case 'defer':
    case 'reject':
      return `${v.code ?? (v.action === 'defer' ? 450 : 550)} ${v.enhanced ?? (v.action === 'defer' ? '4.7.1' : '5.7.1')} ${clean(v.text ?? '')}`.trimEnd();
    case 'hold':
      return `HOLD ${clean(v.text ?? '')}`.trimEnd();
    case 'discard':
      return `DISCARD ${clean(v.text ?? '')}`.trimEnd();
  }
}
