import { formatDuration } from '../../config/duration.ts';
import type { Finding, Measure } from '../measure.ts';

// Countermeasure 1, detection: a client that keeps pushing after being told to slow down
// is a bulk tool, not a person. Each refused transaction counts once.
export const sustainedBreach: Measure = {
  name: 'sustained-breach',
  assess({ snapshot, config }): Finding | null {
    const rule = config.detection.sustainedBreach;
    if (!rule.enabled || snapshot.exceeded === null || snapshot.breaches < rule.refusals) return null;
    const detail = `${snapshot.breaches} refused attempts in ${formatDuration(rule.window)}, threshold ${rule.refusals}`;
    return {
      action: 'accept',
      reason: { module: 'detection', rule: 'sustained-breach', detail, figures: { refusals: snapshot.breaches, threshold: rule.refusals } },
      suspend: { rule: 'sustained-breach', detail, figures: { refusals: snapshot.breaches, threshold: rule.refusals }, autoReleaseAfter: rule.autoReleaseAfter, action: rule.action },
    };
  },
};
