import { formatDuration } from '../../config/duration.ts';
import type { SourceCountRule } from '../../config/config.ts';
import type { AssessContext, Finding, Measure } from '../measure.ts';

// Countermeasure 1, detection: one ID used from many networks at once. Botnets that
// bought a list of passwords send each message from another bot; people use a handful
// of networks a day. A phone behind carrier-grade NAT shows a new address on many
// connections but stays within one or a few /24s, so the rules count networks (IPv4 /24,
// IPv6 /48) unless a rule says `by: address`. Three rules: a short burst window, an hour,
// and a day (slow botnets; off by default).
type RuleName = 'burstSourceIps' | 'manySourceIps' | 'dailySourceIps';
const RULE_IDS: Readonly<Record<RuleName, string>> = { burstSourceIps: 'burst-source-ips', manySourceIps: 'many-source-ips', dailySourceIps: 'daily-source-ips' };

function check(ctx: AssessContext, name: RuleName): Finding | null {
  const rule: SourceCountRule = ctx.config.detection[name];
  if (!rule.enabled) return null;
  const i = distinctWindowsOf(ctx.config).indexOf(rule.window);
  const byPrefix = rule.by !== 'address';
  const seen = (byPrefix ? ctx.snapshot.distinctPrefixes[i] : ctx.snapshot.distinctIps[i]) ?? 0;
  if (seen < rule.distinct) return null;
  const ruleName = RULE_IDS[name];
  const what = byPrefix ? 'distinct source networks (/24, /48)' : 'distinct source IPs';
  const detail = `${seen} ${what} in ${formatDuration(rule.window)}, threshold ${rule.distinct}`;
  const figures: Record<string, number> = byPrefix
    ? { distinctPrefixes: seen, distinctIps: ctx.snapshot.distinctIps[i] ?? 0, threshold: rule.distinct, window: rule.window }
    : { distinctIps: seen, threshold: rule.distinct, window: rule.window };
  return {
    action: 'accept',
    reason: { module: 'detection', rule: ruleName, detail, figures },
    suspend: { rule: ruleName, detail, figures, autoReleaseAfter: rule.autoReleaseAfter, action: rule.action, noticeWithin: rule.window },
  };
}

const windowsByConfig = new WeakMap<AssessContext['config'], readonly number[]>();

/** The distinct-source windows the store must keep, in a fixed order (burst, many, then daily when enabled). */
export function distinctWindowsOf(config: AssessContext['config']): readonly number[] {
  let w = windowsByConfig.get(config);
  if (!w) {
    const d = config.detection;
    w = [...new Set([d.burstSourceIps.window, d.manySourceIps.window, ...(d.dailySourceIps.enabled ? [d.dailySourceIps.window] : [])])];
    windowsByConfig.set(config, w);
  }
  return w;
}

export const burstSourceIps: Measure = { name: 'burst-source-ips', assess: (ctx) => check(ctx, 'burstSourceIps') };
export const manySourceIps: Measure = { name: 'many-source-ips', assess: (ctx) => check(ctx, 'manySourceIps') };
export const dailySourceIps: Measure = { name: 'daily-source-ips', assess: (ctx) => check(ctx, 'dailySourceIps') };
