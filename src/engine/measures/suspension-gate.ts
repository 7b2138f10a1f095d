import type { Finding, Measure } from '../measure.ts';
import { suspendedReply } from '../replies.ts';

// Countermeasure 1: a suspended ID may not send (it can still log in and receive mail:
// only the sending function is stopped).
export const suspensionGate: Measure = {
  name: 'suspension',
  assess({ snapshot, config }): Finding | null {
    if (!snapshot.suspended) return null;
    return {
      action: 'reject',
      code: 550,
      enhanced: '5.7.1',
      text: suspendedReply(config.replies),
      reason: { module: 'suspension', rule: 'suspended', detail: 'sending is suspended for this ID' },
    };
  },
};
