import { join } from 'node:path';
import type { FumidaiConfig } from '../config/config.ts';
import type { Engine } from '../engine/engine.ts';
import type { CounterStore } from '../store/counter-store.ts';
import type { RecordStore } from '../store/record-store.ts';
import type { Metrics } from '../web/metrics.ts';
import { openDistributedState } from './distributed-state.ts';
import { openEmbeddedState } from './embedded-state.ts';

// Opens the state backend the config names (state.backend), behind one shape, so that
// `fumidai serve` does not care which one runs:
//   embedded       memory counters + SQLite records in dataDir (one node; the default)
//   redis-postgres Redis/Valkey counters + PostgreSQL records, shared by many nodes

export interface OpenedState {
  readonly backend: FumidaiConfig['state']['backend'];
  readonly counters: CounterStore;
  readonly records: RecordStore;
  /** One line for the start-up output. */
  readonly description: string;
  /** Restores the hot suspension flags from the records at start; returns how many are open. */
  warm(engine: Engine): Promise<number>;
  /** Starts periodic maintenance; returns a function that stops it. */
  startJobs(log: (msg: string) => void): () => void;
  /** Store health for /health and the admin API; ok is false while a store is unreachable. */
  health(): { ok: boolean; backend: string } & Record<string, unknown>;
  /** Adds store gauges (up, round trips, spool) to the metrics. */
  collect(metrics: Metrics): void;
  close(): Promise<void>;
}

export async function openState(config: FumidaiConfig, opts: { log: (msg: string) => void }): Promise<OpenedState> {
  if (config.state.backend === 'redis-postgres') {
    const d = await openDistributedState(config, { log: opts.log });
    const safeUrl = (u: string): string => u.replace(/\/\/[^@/]*@/, '//***@');
    return {
      backend: 'redis-postgres',
      counters: d.counters,
      records: d.records,
      description: `shared state: Redis ${safeUrl(config.state.redis.url)} (prefix ${config.state.redis.keyPrefix}), PostgreSQL ${safeUrl(config.state.postgres.url)} (schema ${config.state.postgres.schema}); spool ${join(config.dataDir, 'spool')}`,
      async warm() {
        try {
          return await d.resync();
        } catch (e) {
          opts.log(`suspension flags not restored at start (${(e as Error).message}); retried every ${config.state.resyncInterval} s`);
          return 0;
        }
      },
      startJobs: () => () => {},
      health() {
        const h = d.health();
        return { ok: h.redis.up && h.postgres.up, backend: 'redis-postgres', redis: h.redis, postgres: h.postgres };
      },
      collect(metrics) {
        metrics.addCollector(() => {
          const h = d.health();
          return [
            { name: 'fumidai_store_up', help: '1 while the store answers, 0 while it is unreachable.', type: 'gauge', labels: { store: 'redis' }, value: h.redis.up ? 1 : 0 },
            { name: 'fumidai_store_up', help: '', type: 'gauge', labels: { store: 'postgres' }, value: h.postgres.up ? 1 : 0 },
            { name: 'fumidai_redis_round_trips_total', help: 'Requests this node sent to Redis (a pipeline counts once).', type: 'counter', value: d.counters.inner.roundTrips },
            { name: 'fumidai_postgres_statements_total', help: 'Statements this node sent to PostgreSQL.', type: 'counter', value: d.records.queries },
            { name: 'fumidai_spool_entries', help: 'Record writes spooled locally during a PostgreSQL outage, not yet replayed.', type: 'gauge', value: h.postgres.spooled },
            { name: 'fumidai_user_cache_entries', help: 'User settings cached on this node.', type: 'gauge', value: h.postgres.cachedUsers },
            { name: 'fumidai_decisions_dropped_total', help: 'Decision history records dropped (buffer full during an outage).', type: 'counter', value: h.postgres.droppedDecisions },
          ];
        });
      },
      close: () => d.close(),
    };
  }
  const e = openEmbeddedState(config);
  const longest = Math.max(...config.limits.windows.map((w) => w.seconds), config.detection.baselineJump.tau);
  return {
    backend: 'embedded',
    counters: e.counters,
    records: e.records,
    description: `data folder ${config.dataDir} (SQLite ${join(config.dataDir, 'fumidai.sqlite')})`,
    warm: (engine) => engine.warmSuspensions(),
    startJobs(log) {
      const jobs = [
        setInterval(() => {
          try {
            e.saveCounters();
          } catch (err) {
            log(`counter save failed: ${(err as Error).message}`);
          }
        }, 30_000),
        setInterval(() => e.counters.evictIdle(Date.now(), longest + 86400), 3600_000),
      ];
      return () => jobs.forEach((j) => clearInterval(j));
    },
    health: () => ({ ok: true, backend: 'embedded' }),
    collect(metrics) {
      metrics.addCollector(() => [{ name: 'fumidai_store_up', help: '1 while the store answers, 0 while it is unreachable.', type: 'gauge', labels: { store: 'embedded' }, value: 1 }]);
    },
    close: () => e.close(),
  };
}
