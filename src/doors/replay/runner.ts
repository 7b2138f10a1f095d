import type { FumidaiConfig } from '../../config/config.ts';
import { VirtualClock } from '../../engine/clock.ts';
import { counterLayout, Engine } from '../../engine/engine.ts';
import type { AuthEvent, Effect, EpochMs, MessageEvent, RcptEvent, Verdict } from '../../engine/types.ts';
import { createNetworkOperatorLookup } from '../../geo/network-operator.ts';
import { createSourceResolver } from '../../geo/source-resolver.ts';
import { MemoryCounterStore } from '../../store/memory/memory-counter-store.ts';
import { SqliteRecordStore } from '../../store/sqlite/sqlite-record-store.ts';
import { ReplayMetrics, type ReplaySummary } from './metrics.ts';
import { LineParser, ReplayInputError, type AuthLine, type MessageLine, type ReplayLine, type UserLine } from './reader.ts';

// The replay front door (ARCHITECTURE.md §5): replay lines in, engine events through
// the same `engine.decide(event)` that live traffic uses, verdicts and side effects out
// as JSON lines. The clock is virtual and set to each line's time; state is in memory.
// A message is translated the way the Postfix policy door sees it: one RCPT event per
// recipient, then END-OF-MESSAGE with the admitted recipients, if any were admitted.
// Translation only: no decision is taken here.

const MINUTE = 60_000;

export interface ReplayRunnerOptions {
  readonly config: FumidaiConfig;
  /** Receives each output line (without newline); omit for a summary-only run. */
  readonly emit?: (line: string) => void;
}

export interface MessageResult {
  readonly id: string;
  readonly verdict: Verdict;
  readonly admitted: number;
}

const iso = (t: EpochMs): string => new Date(t).toISOString();

export class ReplayRunner {
  readonly engine: Engine;
  readonly clock = new VirtualClock(0);
  readonly counters: MemoryCounterStore;
  readonly records: SqliteRecordStore;
  private readonly parser: LineParser;
  private readonly metrics = new ReplayMetrics();
  private readonly emit: ((line: string) => void) | null;
  private lastT: EpochMs | null = null;
  private minute = -1;
  /** Auto-release times announced by suspend effects, earliest first. */
  private dueTimes: EpochMs[] = [];

  constructor(opts: ReplayRunnerOptions) {
    const config = opts.config;
    this.parser = new LineParser(config);
    this.emit = opts.emit ?? null;
    this.counters = new MemoryCounterStore(counterLayout(config));
    this.records = new SqliteRecordStore({ file: ':memory:', flushMs: 0, decisionHistory: false });
    // Country and lists from the same files as live; no DNSBL (a replay must not depend on the network).
    const source = createSourceResolver(config, { dnsbl: false, watch: false });
    this.engine = new Engine({
      config,
      source,
      operators: createNetworkOperatorLookup(config, source),
      counters: this.counters,
      records: this.records,
      clock: this.clock,
      onEffect: (e, t) => this.onEffect(e, t),
      onStoreError: () => this.metrics.storeErrors++,
    });
  }

  /** Replays one text line; an error names the line and leaves the state as it was. */
  async line(text: string, lineNo: number): Promise<ReplayInputError | null> {
    this.metrics.lines.total++;
    const parsed = this.parser.parse(text, lineNo);
    if (parsed === null) {
      this.metrics.lines.blank++;
      return null;
    }
    if (parsed instanceof ReplayInputError) return parsed;
    if (this.lastT !== null && parsed.t < this.lastT) {
      return new ReplayInputError(lineNo, `time ${iso(parsed.t)} is earlier than the previous line's ${iso(this.lastT)}; a replay file must be ordered by time`);
    }
    if (parsed.type === 'scoring' && this.metrics.scoring) return new ReplayInputError(lineNo, 'a second scoring line; a file has at most one');
    await this.replay(parsed);
    return null;
  }

  /** Counts a line skipped under --skip-invalid. */
  skipped(): void {
    this.metrics.lines.skipped++;
  }

  async replay(line: ReplayLine): Promise<MessageResult | null> {
    this.lastT = line.t;
    if (line.type === 'scoring') {
      // Metrics only: the engine, its clock and its state do not see it (the warm-up's
      // suspensions and history carry on into the scored period).
      this.metrics.startScoring(line.t);
      return null;
    }
    if (Math.floor(line.t / MINUTE) > this.minute) await this.advance(line.t);
    else this.clock.set(line.t);
    switch (line.type) {
      case 'user':
        await this.user(line);
        return null;
      case 'auth':
        await this.auth(line);
        return null;
      case 'message':
        return this.message(line);
    }
  }

  /**
   * Moves the virtual clock to t. Automatic releases run at minute boundaries, as the
   * live server's one-minute timer runs them: at every boundary where one is due (known
   * from the suspend effects), and at the last boundary crossed (covering any others).
   */
  private async advance(t: EpochMs): Promise<void> {
    const m = Math.floor(t / MINUTE);
    if (this.minute >= 0) {
      while (this.dueTimes.length > 0) {
        const boundary = Math.ceil(this.dueTimes[0]! / MINUTE) * MINUTE;
        if (boundary > m * MINUTE) break;
        this.clock.set(boundary);
        await this.engine.releaseDue();
        this.dueTimes = this.dueTimes.filter((d) => d > boundary);
      }
      this.clock.set(m * MINUTE);
      await this.engine.releaseDue();
    }
    this.minute = m;
    this.clock.set(t);
  }

  private async user(line: UserLine): Promise<void> {
    this.metrics.lines.user++;
    this.metrics.user(line.user, line.t, line.group, line.label);
    const existing = await this.records.user(line.user);
    await this.records.putUser({
      ...existing,
      sender: line.user,
      limits: line.limits,
      bulkWindows: existing?.bulkWindows ?? [],
      createdAt: existing?.createdAt ?? line.t,
      // Countermeasures 3 and 5 (docs/connection-source.md, docs/sender-spoofing.md).
      ...(line.allowAbroad !== undefined ? { allowAbroad: line.allowAbroad } : {}),
      ...(line.abroadUntil !== undefined ? { abroadUntil: line.abroadUntil } : {}),
      ...(line.addresses !== undefined ? { addresses: line.addresses.map((a, i) => ({ address: a.toLowerCase(), kind: i === 0 ? ('primary' as const) : ('alias' as const) })) } : {}),
    });
  }

  private async auth(line: AuthLine): Promise<void> {
    this.metrics.lines.auth++;
    this.metrics.auth(line.user, line.t, line.ok, line.label, line.group);
    this.current = line;
    const event: AuthEvent = { kind: 'auth', t: line.t, door: 'replay', sender: line.user, ip: line.ip, ok: line.ok, method: line.method, protocol: line.protocol };
    await this.engine.decide(event);
  }

  private current: ReplayLine | null = null;

  private async message(line: MessageLine): Promise<MessageResult> {
    this.metrics.lines.message++;
    this.metrics.messageStart(line.user, line.t, line.label, line.group);
    this.current = line;
    const { t, user: sender, ip, mailFrom, id: transaction } = line;
    let admitted = 0;
    let refusal: Verdict | null = null;
    for (let i = 0; i < line.rcpt.length; i++) {
      const rcpt: RcptEvent = { kind: 'rcpt', t, door: 'replay', sender, ip, mailFrom, recipient: line.rcpt[i]!, pendingRecipients: admitted, triedRecipients: i, transaction };
      const v = await this.engine.decide(rcpt);
      if (v.action === 'accept') admitted++;
      else refusal ??= v;
    }
    let verdict: Verdict;
    if (admitted > 0) {
      const msg: MessageEvent = { kind: 'message', t, door: 'replay', sender, ip, mailFrom, recipientCount: admitted, size: line.size, headerFrom: line.headerFrom, transaction };
      verdict = await this.engine.decide(msg);
    } else {
      verdict = refusal!;
    }
    this.metrics.message(line.user, line.t, line.label, verdict, line.rcpt.length, admitted);
    if (this.emit !== null) {
      this.emit(JSON.stringify({ id: line.id, action: verdict.action, code: verdict.code ?? null, pool: verdict.pool ?? null, reasons: verdict.reasons }));
    }
    return { id: line.id, verdict, admitted };
  }

  private onEffect(e: Effect, t: EpochMs): void {
    const cur = this.current;
    switch (e.type) {
      case 'suspend':
        this.metrics.suspension(e.sender, t, e.rule, e.detail);
        if (e.autoReleaseAt !== null) {
          this.dueTimes.push(e.autoReleaseAt);
          this.dueTimes.sort((a, b) => a - b);
        }
        this.emit?.(
          JSON.stringify({ type: 'suspend', user: e.sender, rule: e.rule, detail: e.detail, figures: e.figures, autoReleaseAt: e.autoReleaseAt === null ? null : iso(e.autoReleaseAt), t: iso(t), ...(cur?.type === 'message' ? { id: cur.id } : {}) }),
        );
        break;
      case 'notice':
        this.metrics.notice(e.kind);
        this.emit?.(JSON.stringify({ type: 'notice', user: e.sender, kind: e.kind, data: e.data, t: iso(t) }));
        break;
      case 'audit':
        this.emit?.(JSON.stringify({ type: 'audit', user: e.sender, action: e.action, detail: e.detail, t: iso(t) }));
        break;
    }
  }

  summary(): ReplaySummary {
    return this.metrics.summary();
  }

  async close(): Promise<void> {
    await this.records.close();
  }
}
