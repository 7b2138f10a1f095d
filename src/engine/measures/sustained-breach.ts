import { formatDuration } from '../../config/duration.ts';
import type { Finding, Measure } from '../measure.ts';
import { familiarOrSuspend } from './familiar-network.ts';

// Countermeasure 1, detection: a client that keeps pushing after being told to slow down
// is a bulk tool, not a person. Each refused transaction counts once.
//
// A bulk tool on the ID's own familiar network (IPv4 /24 or IPv6 /48 first seen at least
// `familiarAfter` ago: the office, the home line) is most likely the user's own mail-merge:
// the limits keep deferring it and the user gets a notice, but sending is not suspended.
// From a network new to the ID (a rented server, a bot) the refusals suspend. The residual
// risk is malware on the user's own machine, which sends from the familiar network: it is
// held to the limits and reported, not stopped (docs/limits.md).
export const sustainedBreach: Measure = {
  name: 'sustained-breach',
  assess({ event, snapshot, config }): Finding | null {
    const rule = config.detection.sustainedBreach;
    if (!rule.enabled || snapshot.exceeded === null || snapshot.breaches < rule.refusals) return null;
    const figures: Record<string, number> = { refusals: snapshot.breaches, threshold: rule.refusals };
    const detail = `${snapshot.breaches} refused attempts in ${formatDuration(rule.window)}, threshold ${rule.refusals}`;
    return familiarOrSuspend({ snapshot, now: event.t, config }, 'sustained-breach', rule, detail, figures);
  },
};
