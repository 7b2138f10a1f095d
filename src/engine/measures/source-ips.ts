import { formatDuration } from '../../config/duration.ts';
import type { DetectionRule } from '../../config/config.ts';
import type { AssessContext, Finding, Measure } from '../measure.ts';

// Countermeasure 1, detection: one ID used from many addresses at once. Botnets that
// bought a list of passwords send each message from another bot; people use a handful
// of networks a day. Two rules: a short burst window and a longer one.
function check(ctx: AssessContext, name: 'burstSourceIps' | 'manySourceIps'): Finding | null {
  const rule: DetectionRule & { window: number; distinct: number } = ctx.config.detection[name];
  if (!rule.enabled) return null;
  const i = distinctWindowsOf(ctx.config).indexOf(rule.window);
  const seen = ctx.snapshot.distinctIps[i] ?? 0;
  if (seen < rule.distinct) return null;
  const ruleName = name === 'burstSourceIps' ? 'burst-source-ips' : 'many-source-ips';
  const detail = `${seen} distinct source IPs in ${formatDuration(rule.window)}, threshold ${rule.distinct}`;
  const figures = { distinctIps: seen, threshold: rule.distinct, window: rule.window };
  return {
    action: 'accept',
    reason: { module: 'detection', rule: ruleName, detail, figures },
    suspend: { rule: ruleName, detail, figures, autoReleaseAfter: rule.autoReleaseAfter, action: rule.action },
  };
}

const windowsByConfig = new WeakMap<AssessContext['config'], readonly number[]>();

/** The distinct-IP windows the store must keep, in a fixed order. */
export function distinctWindowsOf(config: AssessContext['config']): readonly number[] {
  let w = windowsByConfig.get(config);
  if (!w) {
    w = [...new Set([config.detection.burstSourceIps.window, config.detection.manySourceIps.window])];
    windowsByConfig.set(config, w);
  }
  return w;
}

export const burstSourceIps: Measure = { name: 'burst-source-ips', assess: (ctx) => check(ctx, 'burstSourceIps') };
export const manySourceIps: Measure = { name: 'many-source-ips', assess: (ctx) => check(ctx, 'manySourceIps') };
