import { formatDuration } from '../../config/duration.ts';
import type { UserSettings } from '../../store/record-store.ts';
import type { Finding, Measure } from '../measure.ts';
import type { EpochMs } from '../types.ts';
import { familiarOrSuspend } from './familiar-network.ts';

/** An operator approved this ID's volume: own limits, or a bulk window active or ended within `window` seconds. */
function hasOverride(settings: UserSettings | null, now: EpochMs, window: number): boolean {
  if (settings === null) return false;
  if (settings.limits !== null) return true;
  for (const b of settings.bulkWindows) if (b.from <= now && now < b.until + window * 1000) return true;
  return false;
}

// Countermeasure 1, detection: a sudden jump against the ID's own history. Only for IDs
// with enough history; new IDs are covered by the fixed limits. IDs whose volume an
// operator approved (own limits, a bulk window) are left to those limits: their weekly
// newsletter is a jump by design.
//
// Like sustained-breach, a jump from the ID's own familiar network (first used at least
// `familiarAfter` ago: the office that sends the newsletter) only notifies; a jump from a
// network new to the ID (a bot, a rented server) suspends. The residual risk is the same:
// malware on the user's own machine is held to the limits and reported, not stopped.
export const baselineJump: Measure = {
  name: 'baseline-jump',
  assess({ event, snapshot, config, settings }): Finding | null {
    const rule = config.detection.baselineJump;
    if (!rule.enabled || event.kind !== 'message' || !snapshot.admitted) return null;
    if (snapshot.historySeconds < rule.minHistory) return null;
    if (rule.exemptOverrides && hasOverride(settings, event.t, rule.window)) return null;
    const w = config.limits.windows.findIndex((x) => x.seconds === rule.window);
    const recent = snapshot.windows[w]?.messages ?? 0;
    const expected = snapshot.baselinePerHour * (rule.window / 3600);
    const threshold = Math.max(rule.minMessages, rule.factor * expected);
    if (recent < threshold) return null;
    const detail = `${recent} messages in ${formatDuration(rule.window)} against a baseline of ${expected.toFixed(1)}; threshold ${Math.ceil(threshold)}`;
    const figures: Record<string, number> = { messages: recent, baseline: Number(expected.toFixed(2)), threshold: Math.ceil(threshold) };
    return familiarOrSuspend({ snapshot, now: event.t, config }, 'baseline-jump', rule, detail, figures);
  },
};
