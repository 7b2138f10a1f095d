import type { Finding, Measure } from '../measure.ts';
import { abroadRefused, render } from '../replies.ts';
import { abroadPermission, isAbroad, penaltyFinding } from './source-common.ts';

// Countermeasure 3: the per-user switch "allow sending from abroad" (source document,
// company A; iTSCOM's one-week travel permission). A message from outside the home
// countries is refused unless the user turned sending from abroad on, or has a travel
// exception that has not ended. Internal addresses and trusted relays are never abroad.
// Users allowed abroad may get tighter limits while abroad (source.abroad.limitScale).
export const sourceCountry: Measure = {
  name: 'source-country',
  assess(ctx): Finding | null {
    const cfg = ctx.config.source;
    const src = ctx.source;
    if (!cfg.enabled || !cfg.abroad.enabled || !src || ctx.event.kind === 'auth' || !isAbroad(src, ctx.config)) return null;
    const cc = src.place.country;
    const permit = abroadPermission(ctx.settings, ctx.config, ctx.event.t);
    if (permit.allowed) {
      if (cfg.abroad.limitScale >= 1) return null;
      const f = penaltyFinding(
        ctx,
        { action: 'limit', limitScale: cfg.abroad.limitScale },
        { module: 'source', rule: 'abroad-limits', detail: `sending from ${cc} (${src.ip}), allowed (${permit.why})`, figures: { country: cc, ip: src.ip } },
        abroadRefused(cc, cfg.abroad.portal),
      );
      return f?.action === 'accept' ? null : f;
    }
    const detail = `sending from ${cc} (${src.ip}) while sending from abroad is off (${permit.why})`;
    const reject = cfg.abroad.action === 'reject';
    return {
      action: reject ? 'reject' : 'defer',
      code: reject ? 550 : 450,
      enhanced: reject ? '5.7.1' : '4.7.1',
      text: render(abroadRefused(cc, cfg.abroad.portal), ctx.config.replies.languages),
      reason: { module: 'source', rule: 'abroad-off', detail, figures: { country: cc, ip: src.ip } },
      ...(cfg.abroad.notify ? { notice: { kind: 'abroad-attempt' as const, data: { country: cc, ip: src.ip }, onceWithin: cfg.regions.noticeInterval } } : {}),
    };
  },
};
