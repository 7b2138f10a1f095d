// A real engine for door tests, with every product module plus one test module that
// lets a test ask for a verdict through a header: "X-Test-Verdict: hold" or
// "X-Test-Verdict: pool=<name>". Injected through Engine's documented `measures`
// option; everything else (stores, suspension, replies, pools in verdicts) is the
// product's. Used until the content module decides pools on its own, and to test
// outcomes the content module rarely produces.

import { configFromObject } from '../../src/config/load.ts';
import type { FumidaiConfig } from '../../src/config/config.ts';
import { systemClock } from '../../src/engine/clock.ts';
import { counterLayout, Engine } from '../../src/engine/engine.ts';
import type { Finding, Measure } from '../../src/engine/measure.ts';
import { MEASURES } from '../../src/engine/measures/index.ts';
import { MemoryCounterStore } from '../../src/store/memory/memory-counter-store.ts';
import { SqliteRecordStore } from '../../src/store/sqlite/sqlite-record-store.ts';

export const TEST_VERDICT_HEADER = 'X-Test-Verdict';

export const testVerdict: Measure = {
  name: 'test-verdict',
  assess({ event }): Finding | null {
    if (event.kind !== 'message') return null;
    const h = event.headers?.find(([n]) => n.toLowerCase() === TEST_VERDICT_HEADER.toLowerCase());
    if (h === undefined) return null;
    const value = h[1].trim();
    if (value === 'hold') return { action: 'hold', reason: { module: 'test', rule: 'hold', detail: 'asked by the test' } };
    const m = /^pool=([A-Za-z0-9_-]+)$/.exec(value);
    if (m === null) return null;
    const finding = { action: 'accept' as const, pool: m[1]!, reason: { module: 'test', rule: 'pool', detail: `pool ${m[1]} asked by the test` } };
    return finding;
  },
};

export interface TestEngine {
  readonly config: FumidaiConfig;
  readonly engine: Engine;
  readonly counters: MemoryCounterStore;
  close(): Promise<void>;
}

export function testEngine(configDoc: unknown = {}): TestEngine {
  const config = configFromObject(configDoc);
  const counters = new MemoryCounterStore(counterLayout(config));
  const records = new SqliteRecordStore({ file: ':memory:', flushMs: 0 });
  const engine = new Engine({ config, counters, records, clock: systemClock, measures: [...MEASURES, testVerdict] });
  return { config, engine, counters, close: () => records.close() };
}
