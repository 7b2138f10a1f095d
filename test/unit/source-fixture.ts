import type { FumidaiConfig } from '../../src/config/config.ts';
import { configFromObject } from '../../src/config/load.ts';
import { VirtualClock } from '../../src/engine/clock.ts';
import { counterLayout, Engine } from '../../src/engine/engine.ts';
import { senderId, type Effect, type EpochMs, type Verdict } from '../../src/engine/types.ts';
import { bundledCountryDatabase, CountryDatabase } from '../../src/geo/country-db.ts';
import { parseIp, specialUse } from '../../src/geo/ip.ts';
import { GeoSourceResolver, type SourceResolverOptions } from '../../src/geo/source-resolver.ts';
import { MemoryCounterStore } from '../../src/store/memory/memory-counter-store.ts';
import { SqliteRecordStore } from '../../src/store/sqlite/sqlite-record-store.ts';
import { sendLikePolicyDoor, type SendOptions } from '../support/engine-fixture.ts';

// Helpers for the connection-source and spoofing tests: addresses picked by looking them
// up in the shipped database (never guessed), and an engine with the real resolver.

export const T0: EpochMs = Date.parse('2026-11-02T09:00:00Z');

let db: CountryDatabase | null = null;
function database(): CountryDatabase {
  db ??= new CountryDatabase(bundledCountryDatabase());
  return db;
}

const picked = new Map<string, string[]>();

/**
 * `n` distinct public IPv4 addresses that the shipped database places in `country`,
 * found by scanning a fixed grid of addresses (deterministic for one database).
 */
export function addressesIn(country: string, n = 1): string[] {
  const have = picked.get(country) ?? [];
  if (have.length >= n) return have.slice(0, n);
  const out: string[] = [];
  const d = database();
  outer: for (let a = 1; a < 224; a++) {
    for (let b = 0; b < 256; b += 3) {
      const ip = `${a}.${b}.${(a * 7 + b) % 250}.${(a + b) % 200 + 10}`;
      const p = parseIp(ip)!;
      if (specialUse(p) !== null) continue;
      if (d.lookup(p).country === country) {
        out.push(ip);
        if (out.length >= n) break outer;
      }
    }
  }
  if (out.length < n) throw new Error(`the shipped database has fewer than ${n} grid addresses in ${country}`);
  picked.set(country, out);
  return out;
}

export interface SourceFixture {
  readonly config: FumidaiConfig;
  readonly engine: Engine;
  readonly clock: VirtualClock;
  readonly counters: MemoryCounterStore;
  readonly records: SqliteRecordStore;
  readonly resolver: GeoSourceResolver;
  readonly effects: Effect[];
  send(user: string, opts: SendOptions & { readonly ip: string }): Promise<Verdict>;
  login(user: string, ip: string, at?: EpochMs): Promise<Verdict>;
  close(): Promise<void>;
}

export function sourceFixture(configDoc: Record<string, unknown> = {}, resolverOpts: SourceResolverOptions = {}): SourceFixture {
  const config = configFromObject(configDoc);
  const clock = new VirtualClock(T0);
  const counters = new MemoryCounterStore(counterLayout(config));
  const records = new SqliteRecordStore({ file: ':memory:', flushMs: 0 });
  const resolver = new GeoSourceResolver(config, { watch: false, ...resolverOpts });
  const effects: Effect[] = [];
  const engine = new Engine({ config, counters, records, clock, source: resolver, onEffect: (e) => effects.push(e) });
  return {
    config,
    engine,
    clock,
    counters,
    records,
    resolver,
    effects,
    send: (user, opts) => sendLikePolicyDoor(engine, clock, user, opts),
    async login(user, ip, at) {
      if (at !== undefined) clock.set(at);
      return engine.decide({ kind: 'auth', t: clock.now(), door: 'replay', sender: senderId(user), ip, ok: true });
    },
    async close() {
      resolver.close();
      await records.close();
    },
  };
}
