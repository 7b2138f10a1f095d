import type { DetectionRule, FumidaiConfig } from '../../config/config.ts';
import type { SenderSnapshot } from '../../store/counter-store.ts';
import type { Finding } from '../measure.ts';
import type { EpochMs } from '../types.ts';

// Shared by the detection rules that spare an ID's own familiar network (sustained-breach,
// baseline-jump): a network (IPv4 /24, IPv6 /48) the ID first used at least `familiarAfter`
// seconds ago — the office, the home line — is where the user's own mail-merge and
// newsletter come from; a network new to the ID (a rented server, a bot) is not.
//
// A home line's address changes when it reconnects, often to another /24 of the same ISP:
// with detection.familiarScope "as" the engine also spares a request from an autonomous
// system the ID has used for `familiarAfter` (SuspendRequest.familiarOperatorAfter).

export interface SourceFamiliarity {
  /** The request's network was first used by the ID at least `familiarAfter` ago. */
  readonly familiar: boolean;
  /** Days since the ID first used the request's network (one decimal); null when unknown. */
  readonly ageDays: number | null;
}

/** Whether the request's network is familiar to the ID; `familiarAfter` null: never. */
export function sourceFamiliarity(snapshot: SenderSnapshot, now: EpochMs, familiarAfter: number | null): SourceFamiliarity {
  const known = snapshot.prefixFirstSeen;
  if (known === null) return { familiar: false, ageDays: null };
  return {
    familiar: familiarAfter !== null && now - known >= familiarAfter * 1000,
    ageDays: Number(((now - known) / 86_400_000).toFixed(1)),
  };
}

/** A detection rule with the familiar-network exception (sustainedBreach, baselineJump). */
export interface FamiliarExceptionRule extends DetectionRule {
  readonly window: number;
  readonly familiarAfter: number | null;
}

/**
 * The finding of such a rule once its threshold is reached: from a familiar network one
 * `suspicious` notice per window; otherwise a suspension (or what `action` says), which the
 * engine still turns into a notice when the ID has long used the request's network operator.
 */
export function familiarOrSuspend(
  ctx: { readonly snapshot: SenderSnapshot; readonly now: EpochMs; readonly config: FumidaiConfig },
  ruleName: string,
  rule: FamiliarExceptionRule,
  detail: string,
  figures: Record<string, number>,
): Finding {
  const source = sourceFamiliarity(ctx.snapshot, ctx.now, rule.familiarAfter);
  if (source.ageDays !== null) figures.sourceAgeDays = source.ageDays;
  if (source.familiar) {
    const reason = { module: 'detection', rule: ruleName, detail: `${detail}; from a familiar network (known ${source.ageDays} d): notified, not suspended`, figures };
    return { action: 'accept', reason, notice: { kind: 'suspicious', data: { rule: ruleName, ...figures }, onceWithin: rule.window } };
  }
  const operatorCheck = rule.familiarAfter !== null && ctx.config.detection.familiarScope === 'as';
  return {
    action: 'accept',
    reason: { module: 'detection', rule: ruleName, detail, figures },
    suspend: {
      rule: ruleName,
      detail,
      figures,
      autoReleaseAfter: rule.autoReleaseAfter,
      action: rule.action,
      noticeWithin: rule.window,
      ...(operatorCheck ? { familiarOperatorAfter: rule.familiarAfter } : {}),
    },
  };
}
