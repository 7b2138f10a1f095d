import type { FumidaiConfig, SourcePenalty, SourcePenaltyRule } from '../../config/config.ts';
import { formatDuration } from '../../config/duration.ts';
import type { UserSettings } from '../../store/record-store.ts';
import type { AssessContext, Finding, NoticeRequest } from '../measure.ts';
import { render, SOURCE_LIMIT, type ReplyText } from '../replies.ts';
import type { EpochMs, Reason, SourceInfo } from '../types.ts';

// Shared by the connection-source modules (countermeasure 3): "abroad", the user's
// permission to send from abroad, and how a graded penalty becomes a finding.

/** A connection from outside the home countries ("--" internal/trusted never is; "ZZ" unknown is). */
export function isAbroad(source: SourceInfo | null | undefined, config: FumidaiConfig): boolean {
  if (!source) return false;
  const cc = source.place.country;
  return cc !== '--' && !config.source.homeCountries.includes(cc);
}

export interface AbroadPermission {
  readonly allowed: boolean;
  /** Where the answer came from, for the reason text. */
  readonly why: string;
}

export function abroadPermission(settings: UserSettings | null, config: FumidaiConfig, now: EpochMs): AbroadPermission {
  const until = settings?.abroadUntil ?? null;
  if (until !== null && now < until) return { allowed: true, why: `travel exception until ${new Date(until).toISOString()}` };
  if (settings?.allowAbroad !== undefined) {
    const ended = until !== null ? `; travel exception ended ${new Date(until).toISOString()}` : '';
    return { allowed: settings.allowAbroad, why: `user setting: sending from abroad ${settings.allowAbroad ? 'on' : 'off'}${ended}` };
  }
  const ended = until !== null ? `; travel exception ended ${new Date(until).toISOString()}` : '';
  return { allowed: config.source.abroad.defaultAllow, why: `default for users without a setting: ${config.source.abroad.defaultAllow ? 'on' : 'off'}${ended}` };
}

export interface ScaledHit {
  readonly window: number;
  readonly series: 'messages' | 'recipients';
  readonly count: number;
  readonly limit: number;
}

/**
 * Whether this request would exceed the limits in force scaled by `scale`. At RCPT the
 * snapshot holds the counts before the message (nothing was added), at END-OF-MESSAGE the
 * counts with it; the test mirrors the store's own admission test (limit N allows N).
 */
export function scaledLimitHit(ctx: AssessContext, scale: number): ScaledHit | null {
  const e = ctx.event;
  if (scale >= 1 || e.kind === 'auth') return null;
  const windows = ctx.config.limits.windows;
  for (let w = 0; w < ctx.limits.length && w < windows.length; w++) {
    const lim = ctx.limits[w]!;
    const count = ctx.snapshot.windows[w];
    if (!count) continue;
    const mLimit = Math.max(1, Math.floor(lim.messages * scale));
    const rLimit = Math.max(1, Math.floor(lim.recipients * scale));
    if (e.kind === 'rcpt') {
      const addM = e.pendingRecipients === 0 ? 1 : 0;
      if (addM > 0 && count.messages + addM > mLimit) return { window: windows[w]!.seconds, series: 'messages', count: count.messages, limit: mLimit };
      if (count.recipients + e.pendingRecipients + 1 > rLimit) return { window: windows[w]!.seconds, series: 'recipients', count: count.recipients, limit: rLimit };
    } else {
      if (count.messages > mLimit) return { window: windows[w]!.seconds, series: 'messages', count: count.messages - 1, limit: mLimit };
      if (count.recipients > rLimit) return { window: windows[w]!.seconds, series: 'recipients', count: count.recipients - e.recipientCount, limit: rLimit };
    }
  }
  return null;
}

const PENALTY_ORDER: Readonly<Record<SourcePenalty, number>> = { notify: 0, limit: 1, defer: 2, reject: 3, suspend: 4 };

export function severer(a: SourcePenalty, b: SourcePenalty): SourcePenalty {
  return PENALTY_ORDER[b] > PENALTY_ORDER[a] ? b : a;
}

/**
 * A graded penalty as a finding. Logins (auth events) are never refused here: a login
 * only counts, and can lead to a notice or a suspension of sending.
 */
export function penaltyFinding(ctx: AssessContext, rule: SourcePenaltyRule, reason: Reason, text: ReplyText, notice?: NoticeRequest): Finding | null {
  const languages = ctx.config.replies.languages;
  const isAuth = ctx.event.kind === 'auth';
  const base = notice ? { notice } : {};
  switch (rule.action) {
    case 'notify':
      return { action: 'accept', reason, ...base };
    case 'limit': {
      const scale = rule.limitScale ?? 1;
      const hit = scaledLimitHit(ctx, scale);
      if (hit === null) return { action: 'accept', reason, ...base };
      const span = formatDuration(hit.window);
      return {
        action: 'defer',
        code: 450,
        enhanced: '4.7.1',
        text: render(SOURCE_LIMIT, languages),
        reason: {
          ...reason,
          detail: `${reason.detail}; limits ×${scale}: ${hit.count} ${hit.series} in ${span} already, limit ${hit.limit}`,
          figures: { ...reason.figures, window: hit.window, count: hit.count, limit: hit.limit, scale },
        },
        ...base,
      };
    }
    case 'defer':
      return isAuth ? { action: 'accept', reason, ...base } : { action: 'defer', code: 450, enhanced: '4.7.1', text: render(text, languages), reason, ...base };
    case 'reject':
      return isAuth ? { action: 'accept', reason, ...base } : { action: 'reject', code: 550, enhanced: '5.7.1', text: render(text, languages), reason, ...base };
    case 'suspend':
      return {
        action: 'accept',
        reason,
        suspend: { rule: reason.rule, detail: reason.detail, figures: reason.figures ?? {}, autoReleaseAfter: rule.autoReleaseAfter ?? null, action: 'suspend', noticeWithin: ctx.config.source.regions.noticeInterval },
        ...base,
      };
  }
}

const countryWindowIndex = new WeakMap<FumidaiConfig, number>();

/** Index of source.regions.window among the store's distinct windows (see counterLayout). */
export function countryWindow(config: FumidaiConfig, distinctIpWindows: readonly number[]): number {
  let i = countryWindowIndex.get(config);
  if (i === undefined) {
    i = [...new Set([...distinctIpWindows, config.source.regions.window])].indexOf(config.source.regions.window);
    countryWindowIndex.set(config, i);
  }
  return i;
}
