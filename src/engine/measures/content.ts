import type { ContentAnalysis, ContentContext } from '../../classify/analysis.ts';
import type { FumidaiConfig } from '../../config/config.ts';
import type { Finding, Measure } from '../measure.ts';
import { render, type ReplyText } from '../replies.ts';

// Countermeasure 2, content: the classifier's spam probability of an outgoing message
// (combined with Rspamd's when configured) and campaign detection (the same body or
// link set from several sender IDs within a window). Refuses or holds above the
// configured thresholds; otherwise explains why a message counts as suspect, which the
// `pool` module turns into a route. Acts on message events that carry content.

const CONTENT_REFUSED: ReplyText = {
  ja: 'このメールは迷惑メールの特徴が強いため送信できません。心当たりがない場合はパスワードを変更してください',
  en: 'Message refused: it looks like spam; if you did not send it, change your password',
};

export interface ContentJudgement {
  readonly threshold: number;
  readonly suspect: boolean;
  /** Largest distinct-sender count of the message's fingerprints, when counted. */
  readonly campaignSenders: number;
  readonly campaign: boolean;
}

export function judge(a: ContentAnalysis, config: FumidaiConfig): ContentJudgement {
  const threshold = config.content.suspect ?? a.modelThreshold;
  const c = config.content.campaign;
  const campaignSenders = a.campaignSenders === null ? 0 : Math.max(a.campaignSenders.body, a.campaignSenders.urls);
  const campaign = c.enabled && campaignSenders >= c.senders;
  return { threshold, suspect: a.probability >= threshold || campaign, campaignSenders, campaign };
}

function figures(a: ContentAnalysis, j: ContentJudgement): Record<string, number | string> {
  const f: Record<string, number | string> = { probability: Number(a.probability.toFixed(4)), threshold: j.threshold };
  if (a.rspamd !== null) {
    f.ours = Number(a.ours.toFixed(4));
    f.rspamdScore = a.rspamd.score;
  }
  if (a.rspamdError !== null) f.rspamd = 'unavailable';
  if (j.campaignSenders > 1) f.campaignSenders = j.campaignSenders;
  return f;
}

export const content: Measure = {
  name: 'content',
  assess(ctx): Finding | null {
    const a = (ctx as ContentContext).content;
    if (a === undefined || a === null || ctx.event.kind !== 'message') return null;
    const cfg = ctx.config.content;
    const j = judge(a, ctx.config);
    const p = a.probability;
    const fig = figures(a, j);
    const pct = `${(p * 100).toFixed(1)}%`;
    const campaignText = `same message from ${j.campaignSenders} sender IDs within ${cfg.campaign.windowSeconds}s, limit ${cfg.campaign.senders}`;
    const refuse = (rule: string, detail: string): Finding => ({
      action: 'reject',
      code: 550,
      enhanced: '5.7.1',
      text: render(CONTENT_REFUSED, ctx.config.replies.languages),
      reason: { module: 'content', rule, detail, figures: fig },
    });
    const hold = (rule: string, detail: string): Finding => ({ action: 'hold', reason: { module: 'content', rule, detail, figures: fig } });
    if (cfg.reject !== null && p >= cfg.reject) return refuse('spam-reject', `spam probability ${pct}, reject from ${cfg.reject}`);
    if (j.campaign && cfg.campaign.action === 'reject') return refuse('campaign', campaignText);
    if (cfg.hold !== null && p >= cfg.hold) return hold('spam-hold', `spam probability ${pct}, hold from ${cfg.hold}`);
    if (j.campaign && cfg.campaign.action === 'hold') return hold('campaign', campaignText);
    if (j.campaign) return { action: 'accept', reason: { module: 'content', rule: 'campaign', detail: campaignText, figures: fig } };
    if (j.suspect) return { action: 'accept', reason: { module: 'content', rule: 'spam-score', detail: `spam probability ${pct}, suspect from ${j.threshold}`, figures: fig } };
    return null;
  },
};
