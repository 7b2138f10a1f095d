import type { Action, EpochMs, Verdict } from '../../engine/types.ts';
import type { ReplayLabel } from './reader.ts';

// What a replay did, and — when the file carries labels — how well: the summary line
// of `fumidai replay`. Labels and groups are only ever read here, never by the engine.
// Definitions (docs/replay.md):
// - an account is compromised from its first abuse-labelled message or successful
//   abuse-labelled login on; failed abuse logins alone (an attack that did not get in)
//   leave it a legitimate user's account;
// - "compromised accounts" in the figures are those with abuse-labelled messages;
//   "login-only" ones were got into but never used to send;
// - a legitimate user is a user with labelled lines that was never compromised;
// - a suspension is true when the account was compromised at or before it, false when
//   the user had labelled lines but was not (yet) compromised, unlabelled otherwise;
// - "accepted before stopped" counts an account's abuse messages accepted before its
//   first true suspension; an account never stopped counts all its accepted ones;
// - percentiles are nearest-rank (p50 is the ceil(n/2)-th smallest value).
// A `scoring` line splits the file into a warm-up and the scored period: every figure
// but the line counts starts again from zero there (the warm-up's figures are kept apart);
// who a user is (group, labelled, compromised since, stopped since) carries over.

/** What became of a message: accept with some recipients refused is "partial". */
export type Outcome = Action | 'partial';

interface UserStat {
  group: string | null;
  labelled: boolean;
  /** Has labelled lines in the current period (warm-up or scored). */
  active: boolean;
  /** When the account was compromised: first abuse message or successful abuse login. */
  firstAbuse: EpochMs | null;
  attack: string | null;
  legitMessages: number;
  legitRefused: number;
  legitDeferred: number;
  legitRejected: number;
  legitPartial: number;
  abuseMessages: number;
  abuseAccepted: number;
  abuseAcceptedBeforeStop: number;
  abuseRecipientsOut: number;
  firstAbuseMessage: EpochMs | null;
  stoppedAt: EpochMs | null;
  stoppedBy: string | null;
  falseSuspensions: { t: EpochMs; rule: string; detail: string }[];
}

export interface Percentiles {
  readonly n: number;
  readonly median: number | null;
  readonly p95: number | null;
  readonly max: number | null;
}

export interface RuleCount {
  total: number;
  true: number;
  false: number;
  unlabelled: number;
}

export interface LegitGroupSummary {
  users: number;
  messages: number;
  deferred: number;
  rejected: number;
  partial: number;
  suspendedUsers: number;
}

export interface AttackSummary {
  accounts: number;
  messages: number;
  accepted: number;
  acceptedBeforeStopped: Percentiles;
  neverStopped: number;
}

export interface LabelSummary {
  readonly abuse: {
    readonly accounts: number;
    readonly messages: number;
    /** Abuse messages accepted (got out), at any time. */
    readonly accepted: number;
    readonly recipientsOut: number;
    readonly acceptedBeforeStopped: Percentiles;
    readonly stoppedAccounts: number;
    readonly neverStopped: number;
    /** Minutes from an account's first abuse message to its stop (stopped accounts that had sent). */
    readonly minutesToStop: Percentiles;
    readonly stoppedBy: Readonly<Record<string, number>>;
    readonly byAttack?: Readonly<Record<string, AttackSummary>>;
    /** Accounts with abuse-labelled logins but no abuse message (e.g. stuffing hits never used). */
    readonly loginOnlyAccounts: number;
  };
  readonly legit: {
    readonly users: number;
    readonly messages: number;
    readonly deferred: number;
    readonly deferredPct: number;
    readonly rejected: number;
    readonly rejectedPct: number;
    /** Accepted with some recipients refused. */
    readonly partial: number;
    readonly suspendedUsers: number;
    readonly suspensions: readonly { user: string; rule: string; t: string; detail: string; group: string | null }[];
    readonly byGroup?: Readonly<Record<string, LegitGroupSummary>>;
  };
  /** Legit-labelled messages of compromised accounts (their owners) that were refused. */
  readonly ownersOfCompromised: { readonly messages: number; readonly refused: number };
  /** Which rule refused which messages (deferred or rejected; partial refusals not included). */
  readonly refusalsByRule: Readonly<Record<string, { legit: number; abuse: number; unlabelled: number }>>;
}

/** What happened in one period of the file: all of it, or the warm-up or the scored part. */
export interface PeriodSummary {
  /** Time of the period's first line (the scoring line's for the scored period). */
  readonly from: string | null;
  /** Time of the period's last line (the scoring line's for the warm-up). */
  readonly to: string | null;
  readonly messages: Readonly<Record<Outcome, number>> & { readonly total: number };
  readonly recipients: { readonly total: number; readonly accepted: number };
  readonly logins: { readonly ok: number; readonly failed: number };
  readonly suspensions: { readonly total: number; readonly released: number; readonly byRule: Readonly<Record<string, RuleCount>> };
  readonly notices: Readonly<Record<string, number>>;
  readonly labels?: LabelSummary;
}

export interface ReplaySummary extends PeriodSummary {
  readonly type: 'summary';
  /** Lines of the whole file (a scoring line counts in total only). */
  readonly lines: { total: number; user: number; auth: number; message: number; blank: number; skipped: number };
  readonly storeErrors: number;
  /** With a scoring line: the period before it, replayed like the rest but not scored. */
  readonly warmup?: PeriodSummary;
}

/** Nearest-rank percentiles of a list of numbers. */
export function percentiles(values: readonly number[]): Percentiles {
  if (values.length === 0) return { n: 0, median: null, p95: null, max: null };
  const s = [...values].sort((a, b) => a - b);
  const rank = (p: number): number => s[Math.max(0, Math.ceil(p * s.length) - 1)]!;
  return { n: s.length, median: rank(0.5), p95: rank(0.95), max: s[s.length - 1]! };
}

/** The rule that refused a message, as "module/rule". */
export function refusingRule(v: Verdict): string {
  for (const e of v.effects) if (e.type === 'suspend') return `detection/${e.rule}`;
  const pick = v.reasons.find((r) => r.module === 'suspension') ?? v.reasons.find((r) => r.module !== 'detection') ?? v.reasons[0];
  return pick ? `${pick.module}/${pick.rule}` : 'unknown';
}

const pct = (n: number, d: number): number => (d === 0 ? 0 : Number(((100 * n) / d).toFixed(3)));
const sortedRecord = <T>(m: Map<string, T>): Record<string, T> => Object.fromEntries([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
const iso = (t: EpochMs): string => new Date(t).toISOString();

export class ReplayMetrics {
  private readonly users = new Map<string, UserStat>();
  private labelsSeen = false;
  private groupsSeen = false;
  private attacksSeen = false;
  readonly lines = { total: 0, user: 0, auth: 0, message: 0, blank: 0, skipped: 0 };
  // Figures of the current period (the whole file, or the warm-up and then the scored part).
  private first: EpochMs | null = null;
  private last: EpochMs | null = null;
  private outcomes: Record<Outcome, number> = { accept: 0, partial: 0, defer: 0, reject: 0, hold: 0, discard: 0 };
  private messages = 0;
  private recipients = 0;
  private recipientsAccepted = 0;
  private loginsOk = 0;
  private loginsFailed = 0;
  private suspensionCount = 0;
  private released = 0;
  private byRule = new Map<string, RuleCount>();
  private notices = new Map<string, number>();
  private refusals = new Map<string, { legit: number; abuse: number; unlabelled: number }>();
  /** The warm-up's figures, once a scoring line has been seen. */
  private warmup: PeriodSummary | null = null;
  storeErrors = 0;

  /** Whether a scoring line has been seen. */
  get scoring(): boolean {
    return this.warmup !== null;
  }

  /**
   * A scoring line at t: what came before is the warm-up. Its figures are set aside and
   * every figure starts again from zero; users keep who they are (group, labels, since
   * when compromised, since when stopped).
   */
  startScoring(t: EpochMs): void {
    this.time(t);
    this.warmup = this.period();
    this.first = t;
    this.last = t;
    this.outcomes = { accept: 0, partial: 0, defer: 0, reject: 0, hold: 0, discard: 0 };
    this.messages = this.recipients = this.recipientsAccepted = this.loginsOk = this.loginsFailed = this.suspensionCount = this.released = 0;
    this.byRule = new Map();
    this.notices = new Map();
    this.refusals = new Map();
    for (const s of this.users.values()) {
      s.active = false;
      s.legitMessages = s.legitRefused = s.legitDeferred = s.legitRejected = s.legitPartial = 0;
      s.abuseMessages = s.abuseAccepted = s.abuseAcceptedBeforeStop = s.abuseRecipientsOut = 0;
      s.firstAbuseMessage = null;
      s.falseSuspensions = [];
    }
  }

  private stat(user: string): UserStat {
    let s = this.users.get(user);
    if (s === undefined) {
      s = {
        group: null,
        labelled: false,
        active: false,
        firstAbuse: null,
        attack: null,
        legitMessages: 0,
        legitRefused: 0,
        legitDeferred: 0,
        legitRejected: 0,
        legitPartial: 0,
        abuseMessages: 0,
        abuseAccepted: 0,
        abuseAcceptedBeforeStop: 0,
        abuseRecipientsOut: 0,
        firstAbuseMessage: null,
        stoppedAt: null,
        stoppedBy: null,
        falseSuspensions: [],
      };
      this.users.set(user, s);
    }
    return s;
  }

  private time(t: EpochMs): void {
    if (this.first === null) this.first = t;
    this.last = t;
  }

  /** Called for every labelled line before the engine sees its events. */
  private noteLabel(user: string, label: ReplayLabel | null, t: EpochMs, compromises: boolean, group: string | null): UserStat {
    const s = this.stat(user);
    if (label !== null) {
      this.labelsSeen = true;
      s.labelled = true;
      s.active = true;
      if (label === 'abuse' && compromises && s.firstAbuse === null) s.firstAbuse = t;
      if (label === 'abuse' && group !== null && s.attack === null) {
        s.attack = group;
        this.attacksSeen = true;
      }
    }
    return s;
  }

  user(user: string, t: EpochMs, group: string | null, label: ReplayLabel | null): void {
    this.time(t);
    const s = this.noteLabel(user, label, t, false, null);
    if (group !== null && label !== 'abuse') {
      s.group = group;
      this.groupsSeen = true;
    }
  }

  /** Before an auth line's event goes to the engine. */
  auth(user: string, t: EpochMs, ok: boolean, label: ReplayLabel | null, group: string | null): void {
    this.time(t);
    this.noteLabel(user, label, t, ok, group);
    if (ok) this.loginsOk++;
    else this.loginsFailed++;
  }

  /** Before a message's events go to the engine. */
  messageStart(user: string | null, t: EpochMs, label: ReplayLabel | null, group: string | null): void {
    this.time(t);
    if (user !== null) this.noteLabel(user, label, t, true, group);
  }

  /** After a message was decided. */
  message(user: string | null, t: EpochMs, label: ReplayLabel | null, verdict: Verdict, rcpts: number, admitted: number): void {
    this.messages++;
    this.recipients += rcpts;
    const outcome: Outcome = verdict.action === 'accept' && admitted < rcpts ? 'partial' : verdict.action;
    this.outcomes[outcome]++;
    const out = verdict.action === 'accept';
    if (out) this.recipientsAccepted += admitted;
    if (!out) {
      const rule = refusingRule(verdict);
      let r = this.refusals.get(rule);
      if (r === undefined) this.refusals.set(rule, (r = { legit: 0, abuse: 0, unlabelled: 0 }));
      r[label ?? 'unlabelled']++;
    }
    if (user === null || label === null) return;
    const s = this.stat(user);
    if (label === 'abuse') {
      s.abuseMessages++;
      if (s.firstAbuseMessage === null) s.firstAbuseMessage = t;
      if (out) {
        s.abuseAccepted++;
        s.abuseRecipientsOut += admitted;
        if (s.stoppedAt === null) s.abuseAcceptedBeforeStop++;
      }
    } else {
      s.legitMessages++;
      if (!out || outcome === 'partial') s.legitRefused++;
      if (outcome === 'defer') s.legitDeferred++;
      else if (outcome === 'reject') s.legitRejected++;
      else if (outcome === 'partial') s.legitPartial++;
    }
  }

  suspension(user: string, t: EpochMs, rule: string, detail: string): void {
    this.suspensionCount++;
    let c = this.byRule.get(rule);
    if (c === undefined) this.byRule.set(rule, (c = { total: 0, true: 0, false: 0, unlabelled: 0 }));
    c.total++;
    const s = this.stat(user);
    if (!s.labelled) {
      c.unlabelled++;
    } else if (s.firstAbuse !== null && s.firstAbuse <= t) {
      c.true++;
      if (s.stoppedAt === null) {
        s.stoppedAt = t;
        s.stoppedBy = rule;
      }
    } else {
      c.false++;
      s.falseSuspensions.push({ t, rule, detail });
    }
  }

  notice(kind: string): void {
    this.notices.set(kind, (this.notices.get(kind) ?? 0) + 1);
    if (kind === 'released') this.released++;
  }

  summary(): ReplaySummary {
    const { from, to, messages, recipients, logins, suspensions, notices, labels } = this.period();
    return {
      type: 'summary',
      lines: { ...this.lines },
      from,
      to,
      messages,
      recipients,
      logins,
      suspensions,
      notices,
      storeErrors: this.storeErrors,
      ...(labels ? { labels } : {}),
      ...(this.warmup !== null ? { warmup: this.warmup } : {}),
    };
  }

  /** The current period's figures. */
  private period(): PeriodSummary {
    const base: PeriodSummary = {
      from: this.first === null ? null : iso(this.first),
      to: this.last === null ? null : iso(this.last),
      messages: { total: this.messages, ...this.outcomes },
      recipients: { total: this.recipients, accepted: this.recipientsAccepted },
      logins: { ok: this.loginsOk, failed: this.loginsFailed },
      suspensions: { total: this.suspensionCount, released: this.released, byRule: sortedRecord(this.byRule) },
      notices: sortedRecord(this.notices),
    };
    if (!this.labelsSeen) return base;
    return { ...base, labels: this.labelSummary() };
  }

  private labelSummary(): LabelSummary {
    const beforeStop: number[] = [];
    const toStop: number[] = [];
    const stoppedBy = new Map<string, number>();
    const attacks = new Map<string, { accounts: number; messages: number; accepted: number; before: number[]; never: number }>();
    let accounts = 0;
    let abuseMessages = 0;
    let abuseAccepted = 0;
    let recipientsOut = 0;
    let stopped = 0;
    let never = 0;
    let loginOnly = 0;
    let legitUsers = 0;
    let legitMessages = 0;
    let deferred = 0;
    let rejected = 0;
    let partial = 0;
    let ownerMessages = 0;
    let ownerRefused = 0;
    const suspensions: { user: string; rule: string; t: string; detail: string; group: string | null }[] = [];
    const suspendedUsers = new Set<string>();
    const groups = new Map<string, LegitGroupSummary>();

    for (const [user, s] of [...this.users.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (!s.labelled) continue;
      if (s.abuseMessages > 0) {
        accounts++;
        abuseMessages += s.abuseMessages;
        abuseAccepted += s.abuseAccepted;
        recipientsOut += s.abuseRecipientsOut;
        beforeStop.push(s.abuseAcceptedBeforeStop);
        if (s.stoppedAt !== null) {
          stopped++;
          stoppedBy.set(s.stoppedBy!, (stoppedBy.get(s.stoppedBy!) ?? 0) + 1);
          if (s.firstAbuseMessage !== null) toStop.push(Math.max(0, Math.round((s.stoppedAt - s.firstAbuseMessage) / 60000)));
        } else {
          never++;
        }
        const attack = s.attack ?? '(none)';
        let a = attacks.get(attack);
        if (a === undefined) attacks.set(attack, (a = { accounts: 0, messages: 0, accepted: 0, before: [], never: 0 }));
        a.accounts++;
        a.messages += s.abuseMessages;
        a.accepted += s.abuseAccepted;
        a.before.push(s.abuseAcceptedBeforeStop);
        if (s.stoppedAt === null) a.never++;
        ownerMessages += s.legitMessages;
        ownerRefused += s.legitRefused;
      } else if (s.firstAbuse !== null) {
        loginOnly++;
      }
      // A legitimate user of this period: labelled lines in it (or a wrongful suspension).
      if (s.firstAbuse === null && (s.active || s.falseSuspensions.length > 0)) {
        legitUsers++;
        legitMessages += s.legitMessages;
        deferred += s.legitDeferred;
        rejected += s.legitRejected;
        partial += s.legitPartial;
        const g = s.group ?? '(none)';
        let gs = groups.get(g);
        if (gs === undefined) groups.set(g, (gs = { users: 0, messages: 0, deferred: 0, rejected: 0, partial: 0, suspendedUsers: 0 }));
        gs.users++;
        gs.messages += s.legitMessages;
        gs.deferred += s.legitDeferred;
        gs.rejected += s.legitRejected;
        gs.partial += s.legitPartial;
        if (s.falseSuspensions.length > 0) gs.suspendedUsers++;
      }
      for (const f of s.falseSuspensions) {
        suspendedUsers.add(user);
        suspensions.push({ user, rule: f.rule, t: iso(f.t), detail: f.detail, group: s.group });
      }
    }
    suspensions.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : a.user < b.user ? -1 : 1));
    const byAttack = this.attacksSeen
      ? Object.fromEntries(
          [...attacks.entries()]
            .sort(([a], [b]) => (a < b ? -1 : 1))
            .map(([k, a]) => [k, { accounts: a.accounts, messages: a.messages, accepted: a.accepted, acceptedBeforeStopped: percentiles(a.before), neverStopped: a.never }]),
        )
      : undefined;
    return {
      abuse: {
        accounts,
        messages: abuseMessages,
        accepted: abuseAccepted,
        recipientsOut,
        acceptedBeforeStopped: percentiles(beforeStop),
        stoppedAccounts: stopped,
        neverStopped: never,
        minutesToStop: percentiles(toStop),
        stoppedBy: sortedRecord(stoppedBy),
        ...(byAttack ? { byAttack } : {}),
        loginOnlyAccounts: loginOnly,
      },
      legit: {
        users: legitUsers,
        messages: legitMessages,
        deferred,
        deferredPct: pct(deferred, legitMessages),
        rejected,
        rejectedPct: pct(rejected, legitMessages),
        partial,
        suspendedUsers: suspendedUsers.size,
        suspensions,
        ...(this.groupsSeen ? { byGroup: sortedRecord(groups) } : {}),
      },
      ownersOfCompromised: { messages: ownerMessages, refused: ownerRefused },
      refusalsByRule: sortedRecord(this.refusals),
    };
  }
}
