import { formatDuration } from '../../config/duration.ts';
import type { Finding, Measure } from '../measure.ts';

// Countermeasure 1, detection: a run of failed logins followed by a success is a
// password that was just guessed. Only doors that see logins feed this (replay now;
// the submission gateway and Dovecot later).
export const failedLoginsThenSuccess: Measure = {
  name: 'failed-logins',
  assess({ event, snapshot, config }): Finding | null {
    const rule = config.detection.failedLoginsThenSuccess;
    if (!rule.enabled || event.kind !== 'auth' || !event.ok || snapshot.authFailures < rule.failures) return null;
    const detail = `successful login after ${snapshot.authFailures} failed logins in ${formatDuration(rule.window)}, threshold ${rule.failures}`;
    const figures = { failures: snapshot.authFailures, threshold: rule.failures };
    return {
      action: 'accept',
      reason: { module: 'detection', rule: 'failed-logins-then-success', detail, figures },
      suspend: { rule: 'failed-logins-then-success', detail, figures, autoReleaseAfter: rule.autoReleaseAfter, action: rule.action, noticeWithin: rule.window },
    };
  },
};
