import { VirtualClock } from '../../src/engine/clock.ts';
import { counterLayout, Engine } from '../../src/engine/engine.ts';
import { senderId, type Effect, type EpochMs, type MessageEvent, type NetworkOperatorLookup, type RcptEvent, type Verdict } from '../../src/engine/types.ts';
import { configFromObject } from '../../src/config/load.ts';
import type { FumidaiConfig } from '../../src/config/config.ts';
import { MemoryCounterStore } from '../../src/store/memory/memory-counter-store.ts';
import { SqliteRecordStore } from '../../src/store/sqlite/sqlite-record-store.ts';

export const T0: EpochMs = Date.parse('2026-11-02T09:00:00Z');

export interface SendOptions {
  readonly ip?: string;
  readonly rcpts?: number;
  readonly at?: EpochMs;
  readonly mailFrom?: string;
  readonly headerFrom?: string;
}

export interface Fixture {
  readonly config: FumidaiConfig;
  readonly engine: Engine;
  readonly clock: VirtualClock;
  readonly counters: MemoryCounterStore;
  readonly records: SqliteRecordStore;
  readonly effects: Effect[];
  /** Sends one message the way the policy door does: RCPT per recipient, then END-OF-MESSAGE. */
  send(user: string, opts?: SendOptions): Promise<Verdict>;
  close(): Promise<void>;
}

let tx = 0;

/** Sends one message the way the policy door does: RCPT per recipient, then END-OF-MESSAGE. */
export async function sendLikePolicyDoor(engine: Engine, clock: VirtualClock, user: string, opts: SendOptions = {}): Promise<Verdict> {
  if (opts.at !== undefined) clock.set(opts.at);
  const t = clock.now();
  const transaction = `tx${++tx}`;
  const base = { t, door: 'policy' as const, sender: senderId(user), ip: opts.ip ?? '126.10.20.30', mailFrom: opts.mailFrom ?? (user.includes('@') ? user : `${user}@example.jp`), transaction };
  let admitted = 0;
  let refusal: Verdict | null = null;
  for (let i = 0; i < (opts.rcpts ?? 1); i++) {
    const ev: RcptEvent = { ...base, kind: 'rcpt', recipient: `r${i}@example.com`, pendingRecipients: admitted, triedRecipients: i };
    const v = await engine.decide(ev);
    if (v.action === 'accept') admitted++;
    else refusal ??= v;
  }
  if (admitted === 0) return refusal!;
  const msg: MessageEvent = { ...base, kind: 'message', recipientCount: admitted, size: 1000, ...(opts.headerFrom !== undefined ? { headerFrom: opts.headerFrom } : {}) };
  return engine.decide(msg);
}

/** `operators`: AS numbers for detection.familiarScope "as" (serve and replay pass the ASN table's). */
export function fixture(configDoc: unknown = {}, operators: NetworkOperatorLookup | null = null): Fixture {
  const config = configFromObject(configDoc);
  const clock = new VirtualClock(T0);
  const counters = new MemoryCounterStore(counterLayout(config));
  const records = new SqliteRecordStore({ file: ':memory:', flushMs: 0 });
  const effects: Effect[] = [];
  const engine = new Engine({ config, counters, records, clock, operators, onEffect: (e) => effects.push(e) });
  return {
    config,
    engine,
    clock,
    counters,
    records,
    effects,
    send: (user, opts = {}) => sendLikePolicyDoor(engine, clock, user, opts),
    async close() {
      await records.close();
    },
  };
}

/** A config doc with a single window and detection switched off, for limit tests. */
export function limitOnly(windows: { name: string; seconds: number | string; messages: number; recipients: number }[]): unknown {
  const off = { enabled: false };
  return {
    limits: { windows },
    detection: { sustainedBreach: off, manySourceIps: off, burstSourceIps: off, baselineJump: off, failedLoginsThenSuccess: off },
  };
}
