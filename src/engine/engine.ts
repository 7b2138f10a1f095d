import { ContentAnalyser, type ContentAnalysis, type ContentContext } from '../classify/analysis.ts';
import type { FumidaiConfig } from '../config/config.ts';
import type { CounterLayout, CounterStore, ObserveRequest } from '../store/counter-store.ts';
import type { RecordStore, Suspension } from '../store/record-store.ts';
import type { Clock } from './clock.ts';
import { SEVERITY, type Finding, type Measure, type NoticeRequest, type SuspendRequest } from './measure.ts';
import { MEASURES } from './measures/index.ts';
import { limitsFor } from './measures/rate-limit.ts';
import { distinctWindowsOf } from './measures/source-ips.ts';
import { AUTH_REQUIRED, render, STATE_UNAVAILABLE, suspendedReply } from './replies.ts';
import type { Effect, EngineEvent, EpochMs, NetworkOperatorLookup, Reason, SenderId, SourceInfo, SourceResolver, Verdict } from './types.ts';
import { ACCEPT } from './types.ts';

export interface EngineDeps {
  readonly config: FumidaiConfig;
  readonly counters: CounterStore;
  readonly records: RecordStore;
  readonly clock: Clock;
  readonly measures?: readonly Measure[];
  /** Country, network and reputation of client addresses (countermeasure 3); src/geo builds one. */
  readonly source?: SourceResolver | null;
  /** AS numbers for detection.familiarScope "as"; without it only the request's own network can be familiar. */
  readonly operators?: NetworkOperatorLookup | null;
  /** Content classification (countermeasure 2); default: built from config.content at the first message with content. */
  readonly content?: ContentAnalyser | null;
  /** Receives every effect after it was applied (replay prints them; serve logs them). */
  readonly onEffect?: (effect: Effect, t: EpochMs) => void;
  /** Store failures are reported here; the verdict follows policy.storeFailureAction. */
  readonly onStoreError?: (err: unknown) => void;
}

/** The counter layout a config needs; stores are built with it. */
export function counterLayout(config: FumidaiConfig): CounterLayout {
  const d = config.detection;
  return {
    windows: config.limits.windows.map((w) => w.seconds),
    subBuckets: config.limits.subBuckets,
    breachWindow: d.sustainedBreach.window,
    authFailureWindow: d.failedLoginsThenSuccess.window,
    // Countermeasure 3 counts distinct countries over its own window, appended so the
    // indices of the distinct-IP rules stay as they are.
    distinctWindows: config.source.enabled && config.source.regions.enabled
      ? [...new Set([...distinctWindowsOf(config), config.source.regions.window])]
      : distinctWindowsOf(config),
    baselineTau: d.baselineJump.tau,
  };
}

// The decision engine: one call per event, the same for live traffic and replay.
// Pure policy over injected state and clock; all I/O goes through the stores.
export class Engine {
  readonly config: FumidaiConfig;
  private readonly counters: CounterStore;
  private readonly records: RecordStore;
  private readonly clock: Clock;
  private readonly measures: readonly Measure[];
  private readonly source: SourceResolver | null;
  private readonly operators: NetworkOperatorLookup | null;
  /** Awareness notices recorded lately: key → time (see noticedWithin). */
  private readonly recentNotices = new Map<string, EpochMs>();
  private content: ContentAnalyser | null | undefined;
  private readonly onEffect: (effect: Effect, t: EpochMs) => void;
  private readonly onStoreError: (err: unknown) => void;

  constructor(deps: EngineDeps) {
    this.config = deps.config;
    this.counters = deps.counters;
    this.records = deps.records;
    this.clock = deps.clock;
    this.measures = deps.measures ?? MEASURES;
    this.source = deps.source ?? null;
    this.operators = deps.operators ?? null;
    this.content = deps.content;
    this.onEffect = deps.onEffect ?? (() => {});
    this.onStoreError = deps.onStoreError ?? (() => {});
  }

  now(): EpochMs {
    return this.clock.now();
  }

  async decide(event: EngineEvent): Promise<Verdict> {
    if (event.sender === null) return this.unauthenticated(event);
    try {
      return await this.decideFor(event as EngineEvent & { sender: SenderId });
    } catch (err) {
      this.onStoreError(err);
      if (this.config.policy.storeFailureAction === 'accept') return ACCEPT;
      return {
        action: 'defer',
        code: 451,
        enhanced: '4.3.0',
        text: render(STATE_UNAVAILABLE, this.config.replies.languages),
        reasons: [{ module: 'engine', rule: 'store-unavailable', detail: `state store failed: ${(err as Error).message}` }],
        effects: [],
      };
    }
  }

  private unauthenticated(event: EngineEvent): Verdict {
    if (event.kind === 'auth') return ACCEPT;
    const ctx = event.context !== undefined ? this.config.policy.contexts[event.context] : undefined;
    const required = ctx?.requireAuth ?? this.config.policy.requireAuth;
    if (!required) return ACCEPT;
    return {
      action: 'reject',
      code: 530,
      enhanced: '5.7.0',
      text: render(AUTH_REQUIRED, this.config.replies.languages),
      reasons: [{ module: 'auth-required', rule: 'no-sasl-login', detail: `unauthenticated ${event.kind} refused${event.context ? ` (context ${event.context})` : ''}` }],
      effects: [],
    };
  }

  private async decideFor(event: EngineEvent & { sender: SenderId }): Promise<Verdict> {
    const now = event.t;
    // Countermeasure 3: what is known about the client address, before the store operation
    // (its place is stored with the address, for distinct countries and travel checks).
    let source: SourceInfo | null = null;
    if (this.source !== null && event.ip !== null) {
      const s = this.source.resolve(event.ip, event.kind);
      source = s instanceof Promise ? await s : s;
    }
    // The embedded stores answer synchronously; awaiting only real promises saves a
    // microtask turn per call on the policy server's hot path.
    const u = this.records.user(event.sender);
    const settings = u instanceof Promise ? await u : u;
    const limits = limitsFor(this.config, settings, now);
    const place = source === null ? null : source.place;
    // One literal per stage (no spreading): this runs for every request.
    const req: ObserveRequest =
      event.kind === 'auth'
        ? { sender: event.sender, now, ip: event.ip, stage: 'auth', authOk: event.ok, limits, messages: 0, recipients: 0, place }
        : event.kind === 'rcpt'
          ? {
              sender: event.sender,
              now,
              ip: event.ip,
              stage: 'rcpt',
              limits,
              // The message itself is tested until one of its recipients is admitted.
              messages: event.pendingRecipients === 0 ? 1 : 0,
              recipients: event.pendingRecipients + 1,
              firstRcpt: event.triedRecipients === 0,
              place,
            }
          : event.alreadyCounted === true
            ? // Content stage of a message the policy door counted: observe only (no limits, adds 0).
              { sender: event.sender, now, ip: event.ip, stage: 'message', limits: [], messages: 0, recipients: 0, place }
            : { sender: event.sender, now, ip: event.ip, stage: 'message', limits, messages: 1, recipients: Math.max(1, event.recipientCount), place };
    // Countermeasure 2: the message's content is classified once, for the content and pool
    // modules; its campaign count and Rspamd (when configured) run alongside the store operation.
    const contentRun = event.kind === 'message' && this.config.content.enabled ? this.contentAnalyser()?.analyse(event, this.counters) ?? null : null;
    const contentSettled = contentRun?.then((a) => ({ a }), (e: unknown) => ({ e })) ?? null;
    const o = this.counters.observe(req);
    const snapshot = o instanceof Promise ? await o : o;
    let content: ContentAnalysis | null = null;
    if (contentSettled !== null) {
      const r = await contentSettled;
      if ('e' in r) throw r.e;
      content = r.a;
    }

    const ctx: ContentContext = { event, config: this.config, settings, limits, snapshot, source, content };
    let worst: Finding | null = null;
    const reasons: Reason[] = [];
    let suspendRequests: SuspendRequest[] | null = null;
    let notifyLimit = false;
    let pool: string | undefined;
    let notices: NoticeRequest[] | null = null;
    for (const m of this.measures) {
      const f = m.assess(ctx);
      if (f === null) continue;
      reasons.push(f.reason);
      if (f.pool !== undefined) pool ??= f.pool;
      if (f.notice !== undefined) (notices ??= []).push(f.notice);
      if (f.suspend && !snapshot.suspended) (suspendRequests ??= []).push(f.suspend);
      if (f.notifyLimit) notifyLimit = true;
      if (worst === null || SEVERITY[f.action] > SEVERITY[worst.action]) worst = f;
    }

    let suspend: SuspendRequest | null = null;
    if (suspendRequests !== null) {
      const chosen = await this.chooseSuspension(event, suspendRequests, reasons);
      suspend = chosen.suspend;
      if (chosen.notices.length > 0) (notices ??= []).push(...chosen.notices);
    }

    const effects: Effect[] = [];
    if (notices !== null) {
      for (const n of notices) {
        if (await this.noticedWithin(event.sender, n, now)) continue;
        effects.push({ type: 'notice', sender: event.sender, kind: n.kind, data: n.data });
        effects.push({ type: 'audit', sender: event.sender, action: n.kind, detail: Object.entries(n.data).map(([k, v]) => `${k}=${v}`).join(' ') });
      }
    }
    if (notifyLimit && worst?.reason.module === 'rate-limit') {
      effects.push({ type: 'notice', sender: event.sender, kind: 'limit-reached', data: { ...worst.reason.figures, rule: worst.reason.rule } });
      effects.push({ type: 'audit', sender: event.sender, action: 'limit-reached', detail: worst.reason.detail });
    }
    let verdict: Verdict;
    if (suspend !== null) {
      effects.push(await this.suspendEffect(event.sender, suspend, now));
      verdict = {
        action: 'reject',
        code: 550,
        enhanced: '5.7.1',
        text: suspendedReply(this.config.replies),
        reasons,
        effects,
      };
    } else {
      verdict = worst === null || worst.action === 'accept'
        ? reasons.length === 0 && effects.length === 0
          ? ACCEPT
          : { action: 'accept', reasons, effects, ...(pool !== undefined ? { pool } : {}) }
        : { action: worst.action, code: worst.code, enhanced: worst.enhanced, text: worst.text, reasons, effects, ...(pool !== undefined && worst.action === 'hold' ? { pool } : {}) };
    }
    await this.apply(effects, now, 'auto');
    // History for `lookup`: refusals, once per transaction (at its first RCPT or at its end),
    // not once per refused recipient. Accepted messages are counted per window and their
    // addresses kept; a per-message row for each of them would put a database write on the
    // policy server's normal path (Postfix's maillog has every message already).
    if (verdict.action !== 'accept' && (event.kind === 'message' || (event.kind === 'rcpt' && event.triedRecipients === 0))) {
      this.records.recordDecision({
        t: now,
        sender: event.sender,
        ip: event.ip,
        stage: event.kind,
        action: verdict.action,
        code: verdict.code ?? null,
        detail: verdict.reasons.map((r) => `${r.module}/${r.rule}: ${r.detail}`).join('; '),
      });
    }
    return verdict;
  }

  /** Whether a notice of this kind was recorded for the sender within its interval (awareness notices are not repeated per message). */
  private async noticedWithin(sender: SenderId, n: NoticeRequest, now: EpochMs): Promise<boolean> {
    // A memory of recent notices spares the record store a read for every refused request
    // of an attack; the store is asked when memory does not know (restart, other nodes).
    const key = `${sender}\u0000${n.kind}\u0000${n.data.step ?? ''}`;
    const since = now - n.onceWithin * 1000;
    const known = this.recentNotices.get(key);
    if (known !== undefined && known >= since) return true;
    const recent = await this.records.notices(sender, 50);
    const last = recent.find((r) => r.kind === n.kind && r.t >= since && r.data.step === n.data.step);
    if (this.recentNotices.size >= 100_000) this.recentNotices.clear();
    this.recentNotices.set(key, last?.t ?? now);
    return last !== undefined;
  }

  /** The content analyser, built on first use; null (classification off) when the model cannot be loaded. */
  private contentAnalyser(): ContentAnalyser | null {
    if (this.content === undefined) {
      try {
        this.content = new ContentAnalyser(this.config);
      } catch (err) {
        this.onStoreError(err);
        this.content = null;
      }
    }
    return this.content;
  }

  /**
   * Of the rules' suspension requests, the first that suspends and is not spared by the
   * familiar-operator exception. When none does, the requests that only notify (action
   * `notify`, or spared: their reasons say why) become `suspicious` notices, each kind at
   * most once per the rule's `noticeWithin`.
   */
  private async chooseSuspension(
    event: EngineEvent & { sender: SenderId },
    requests: readonly SuspendRequest[],
    reasons: Reason[],
  ): Promise<{ suspend: SuspendRequest | null; notices: NoticeRequest[] }> {
    const notices: NoticeRequest[] = [];
    // Both rules usually have the same familiarAfter: one read of the address list for both.
    const known = new Map<number, { asn: number; ageDays: number } | null>();
    for (const s of requests) {
      if (s.action === 'notify') {
        notices.push({ kind: 'suspicious', data: { rule: s.rule, ...s.figures }, onceWithin: s.noticeWithin });
        continue;
      }
      const after = s.familiarOperatorAfter;
      const operators = this.operators;
      if (after === undefined || event.ip === null || operators === null) return { suspend: s, notices: [] };
      let k = known.get(after);
      if (k === undefined) known.set(after, (k = await this.familiarOperator(operators, event.sender, event.ip, event.t, after)));
      if (k === null) return { suspend: s, notices: [] };
      const figures = { ...s.figures, asn: k.asn, operatorAgeDays: k.ageDays };
      const detail = `${s.detail}; from the ID's familiar network operator AS${k.asn} (known ${k.ageDays} d): notified, not suspended`;
      const i = reasons.findIndex((r) => r.rule === s.rule);
      if (i >= 0) reasons[i] = { ...reasons[i]!, detail, figures };
      notices.push({ kind: 'suspicious', data: { rule: s.rule, ...figures }, onceWithin: s.noticeWithin });
    }
    return { suspend: null, notices };
  }

  /**
   * The request's autonomous system and how long ago the ID first used an address of it,
   * when that is at least `after` seconds; null otherwise. One read of the ID's address list:
   * only on the way to a suspension, never on the normal path.
   */
  private async familiarOperator(operators: NetworkOperatorLookup, sender: SenderId, ip: string, now: EpochMs, after: number): Promise<{ asn: number; ageDays: number } | null> {
    const asn = operators.asnOf(ip);
    if (asn === null) return null;
    let first = Infinity;
    for (const a of await this.counters.sourceIps(sender, now)) {
      if (a.firstSeen < first && operators.asnOf(a.ip) === asn) first = a.firstSeen;
    }
    if (!(now - first >= after * 1000)) return null;
    return { asn, ageDays: Number(((now - first) / 86_400_000).toFixed(1)) };
  }

  /** Builds the suspend effect, applying the unblock-loop guard to automatic release. */
  private async suspendEffect(sender: SenderId, s: SuspendRequest, now: EpochMs): Promise<Effect> {
    let autoReleaseAt: EpochMs | null = null;
    if (s.autoReleaseAfter !== null) {
      const last = await this.records.lastAutoRelease(sender);
      const cooldown = this.config.suspension.autoReleaseCooldown * 1000;
      if (last === null || now - last >= cooldown) autoReleaseAt = now + s.autoReleaseAfter * 1000;
    }
    return { type: 'suspend', sender, rule: s.rule, detail: s.detail, figures: s.figures, autoReleaseAt };
  }

  /** Applies effects durably, in order, before the verdict is returned. */
  private async apply(effects: readonly Effect[], now: EpochMs, actor: string): Promise<void> {
    for (const e of effects) {
      switch (e.type) {
        case 'suspend': {
          await this.records.suspend({ sender: e.sender, at: now, by: actor, rule: e.rule, reason: e.detail, figures: e.figures, autoReleaseAt: e.autoReleaseAt });
          await this.counters.setSuspended(e.sender, true);
          await this.records.audit({ t: now, sender: e.sender, actor, action: 'suspend', detail: `${e.rule}: ${e.detail}` });
          await this.records.addNotice({ t: now, sender: e.sender, kind: 'suspended', data: { rule: e.rule, ...e.figures } });
          break;
        }
        case 'notice':
          await this.records.addNotice({ t: now, sender: e.sender, kind: e.kind, data: e.data });
          break;
        case 'audit':
          await this.records.audit({ t: now, sender: e.sender, actor, action: e.action, detail: e.detail });
          break;
      }
      this.onEffect(e, now);
    }
  }

  /** Operator suspension (support tools). */
  async suspendByOperator(sender: SenderId, by: string, reason: string): Promise<Suspension> {
    const now = this.clock.now();
    const s = await this.records.suspend({ sender, at: now, by, rule: 'operator', reason, figures: {}, autoReleaseAt: null });
    await this.counters.setSuspended(sender, true);
    await this.records.audit({ t: now, sender, actor: by, action: 'suspend', detail: `operator: ${reason}` });
    await this.records.addNotice({ t: now, sender, kind: 'suspended', data: { rule: 'operator' } });
    this.onEffect({ type: 'suspend', sender, rule: 'operator', detail: reason, figures: {}, autoReleaseAt: null }, now);
    return s;
  }

  /** Operators can always release; 'auto' marks a release by the auto-release timer. */
  async release(sender: SenderId, by: string, note = ''): Promise<Suspension | null> {
    const now = this.clock.now();
    const s = await this.records.release(sender, now, by);
    await this.counters.setSuspended(sender, false);
    if (s === null) return null;
    await this.records.audit({ t: now, sender, actor: by, action: 'release', detail: note || `released suspension #${s.id} (${s.rule})` });
    await this.records.addNotice({ t: now, sender, kind: 'released', data: { rule: s.rule } });
    this.onEffect({ type: 'notice', sender, kind: 'released', data: { rule: s.rule, by } }, now);
    return s;
  }

  /** Releases suspensions whose automatic release is due; returns how many. */
  async releaseDue(): Promise<number> {
    const due = await this.records.dueAutoReleases(this.clock.now());
    for (const s of due) await this.release(s.sender, 'auto', `automatic release of suspension #${s.id} (${s.rule})`);
    return due.length;
  }

  /** Restores hot suspension flags from the durable records (start-up). */
  async warmSuspensions(): Promise<number> {
    const open = await this.records.activeSuspensions();
    for (const s of open) await this.counters.setSuspended(s.sender, true);
    return open.length;
  }
}
