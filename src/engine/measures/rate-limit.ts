import { formatDuration } from '../../config/duration.ts';
import type { FumidaiConfig } from '../../config/config.ts';
import type { WindowLimit } from '../../store/counter-store.ts';
import type { UserSettings } from '../../store/record-store.ts';
import type { Finding, Measure } from '../measure.ts';
import { limitReached, render } from '../replies.ts';
import type { EpochMs } from '../types.ts';

/** Limits in force for a user at a time: an active bulk window, else the user's own, else the defaults. */
export function limitsFor(config: FumidaiConfig, settings: UserSettings | null, now: EpochMs): readonly WindowLimit[] {
  if (settings) {
    for (const b of settings.bulkWindows) if (b.from <= now && now < b.until) return b.limits;
    if (settings.limits) return settings.limits;
  }
  return config.limits.windows;
}

// Countermeasure 1: messages and recipients per sender ID per window. The admission
// test itself is one atomic store operation (counting is a library of the store); this
// module turns a refusal into a deferral the user can understand.
export const rateLimit: Measure = {
  name: 'rate-limit',
  assess({ snapshot, config }): Finding | null {
    const x = snapshot.exceeded;
    if (x === null) return null;
    const span = formatDuration(x.window);
    return {
      action: 'defer',
      code: 450,
      enhanced: '4.7.1',
      text: render(limitReached(x.series, x.window, x.limit), config.replies.languages),
      reason: {
        module: 'rate-limit',
        rule: `${x.series}-per-${span}`,
        detail: `${x.count} ${x.series} in ${span} already, limit ${x.limit}`,
        figures: { window: x.window, count: x.count, limit: x.limit },
      },
      notifyLimit: snapshot.breaches === 1,
    };
  },
};
