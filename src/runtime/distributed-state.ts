import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import type { FumidaiConfig } from '../config/config.ts';
import { counterLayout } from '../engine/engine.ts';
import type { EpochMs, SenderId } from '../engine/types.ts';
import type { CampaignRequest, CampaignSnapshot, CounterLayout, CounterStore, ObserveRequest, PeekResult, SenderSnapshot, SourceIpStat, TopEntry, TopMetric } from '../store/counter-store.ts';
import { PostgresRecordStore, type PostgresHealth } from '../store/postgres/postgres-record-store.ts';
import { RedisCounterStore } from '../store/redis/redis-counter-store.ts';

// The distributed backend: counters in Redis/Valkey, records in PostgreSQL, shared by
// any number of fumidai nodes. This module owns the connections and the failure
// behaviour (docs/distributed.md, "Failures"):
//   - Redis commands never wait in an offline queue: while the connection is down they
//     fail at once; an unanswered command fails after state.redis.commandTimeoutMs; after
//     3 failures in a row the node stops asking for 1 s (then one request probes), so a
//     blackholed Redis costs at most one timeout per second, not one per request. The
//     engine answers such requests with policy.storeFailureAction.
//   - ioredis reconnects by itself; on every (re)connect the open suspensions are
//     re-asserted from PostgreSQL (a Redis restart without persistence loses no flag),
//     and again every state.resyncInterval seconds.
//   - PostgreSQL: see PostgresRecordStore (user cache, spool).

export interface ServiceHealth {
  readonly up: boolean;
  readonly lastError: string | null;
  readonly downSince: number | null;
}

export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  constructor(
    readonly store: string,
    message: string,
  ) {
    super(message);
  }
}

/** A CounterStore that fails fast while Redis is known to be unreachable. */
export class GuardedCounterStore implements CounterStore {
  readonly layout: CounterLayout;
  private failures = 0;
  private openUntil = 0;
  private up = true;
  private downSince: number | null = null;
  private lastError: string | null = null;
  errors = 0;

  constructor(
    readonly inner: RedisCounterStore,
    private readonly onChange: (up: boolean, why: string) => void,
  ) {
    this.layout = inner.layout;
  }

  health(): ServiceHealth {
    return { up: this.up, lastError: this.lastError, downSince: this.downSince };
  }

  /** Connection state reported by the client (ready / closed). */
  connection(up: boolean, why: string): void {
    if (up) {
      this.failures = 0;
      this.openUntil = 0;
      this.setUp(true, why);
    } else {
      this.lastError = why;
      this.setUp(false, why);
    }
  }

  private setUp(up: boolean, why: string): void {
    if (this.up === up) return;
    this.up = up;
    this.downSince = up ? null : Date.now();
    this.onChange(up, why);
  }

  private async call<T>(f: () => T | Promise<T>): Promise<T> {
    if (Date.now() < this.openUntil) throw new StoreUnavailableError('redis', `Redis unavailable (${this.lastError ?? 'unknown'}); not retried before ${new Date(this.openUntil).toISOString()}`);
    try {
      const v = await f();
      if (this.failures > 0 || !this.up) {
        this.failures = 0;
        this.setUp(true, 'command succeeded');
      }
      return v;
    } catch (e) {
      const msg = (e as Error).message;
      if (e instanceof Error) (e as Error & { store?: string }).store = 'redis';
      // A script error (bad argument) is not an outage.
      if (/^(ERR|WRONGTYPE)\b/.test(msg)) throw e;
      this.errors++;
      this.lastError = msg;
      if (++this.failures >= 3) {
        this.openUntil = Date.now() + 1000;
        this.setUp(false, msg);
      }
      throw e;
    }
  }

  observe(req: ObserveRequest): Promise<SenderSnapshot> {
    return this.call(() => this.inner.observe(req));
  }
  peek(sender: SenderId, now: EpochMs): Promise<PeekResult> {
    return this.call(() => this.inner.peek(sender, now));
  }
  /**
   * The hot flag. The durable record is written first (PostgreSQL), so when Redis cannot
   * take the flag the change is not refused: it is queued on this node and applied as soon
   * as Redis is back (before the resync, which re-asserts every open suspension anyway),
   * so a suspension's audit entry and notice are still written. A queued release lost with
   * the node keeps the ID blocked until an operator releases again (fail safe).
   */
  async setSuspended(sender: SenderId, suspended: boolean): Promise<void> {
    try {
      await this.call(() => this.inner.setSuspended(sender, suspended));
      this.pendingFlags.delete(sender);
    } catch (e) {
      if (/^(ERR|WRONGTYPE)\b/.test((e as Error).message)) throw e;
      this.pendingFlags.set(sender, suspended);
      this.onChange(false, `suspended flag of ${sender} queued until Redis is back: ${(e as Error).message}`);
    }
  }

  /** Flag changes waiting for Redis. */
  readonly pendingFlags = new Map<SenderId, boolean>();

  /** Applies queued flag changes (on reconnect). */
  async flushFlags(): Promise<number> {
    let n = 0;
    for (const [sender, value] of [...this.pendingFlags]) {
      await this.inner.setSuspended(sender, value);
      if (this.pendingFlags.get(sender) === value) this.pendingFlags.delete(sender);
      n++;
    }
    return n;
  }
  sourceIps(sender: SenderId, now: EpochMs): Promise<readonly SourceIpStat[]> {
    return this.call(() => this.inner.sourceIps(sender));
  }
  top(metric: TopMetric, windowSeconds: number, now: EpochMs, limit: number): Promise<readonly TopEntry[]> {
    return this.call(() => this.inner.top(metric, windowSeconds, now, limit));
  }
  size(): Promise<number> {
    return this.call(() => this.inner.size());
  }
  observeCampaign(req: CampaignRequest): Promise<CampaignSnapshot> {
    return this.call(() => this.inner.observeCampaign(req));
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

export interface DistributedState {
  readonly counters: GuardedCounterStore;
  readonly records: PostgresRecordStore;
  readonly redis: Redis | Cluster;
  /** Re-asserts open suspensions from PostgreSQL into Redis; returns how many are open. */
  resync(): Promise<number>;
  health(): { redis: ServiceHealth; postgres: PostgresHealth };
  close(): Promise<void>;
}

export interface DistributedOptions {
  readonly log: (msg: string) => void;
  /** How long to wait at start for Redis and PostgreSQL before serving degraded. */
  readonly startWaitMs?: number;
}

export function redisClient(config: FumidaiConfig, lazy = true): Redis | Cluster {
  const r = config.state.redis;
  if (r.cluster) {
    const u = new URL(r.url);
    return new Cluster([{ host: u.hostname, port: Number(u.port || 6379) }], {
      lazyConnect: lazy,
      enableOfflineQueue: false,
      enableAutoPipelining: false,
      clusterRetryStrategy: (times) => Math.min(50 * times, 1000),
      redisOptions: {
        commandTimeout: r.commandTimeoutMs,
        connectTimeout: r.connectTimeoutMs,
        maxRetriesPerRequest: 0,
        ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
        ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
        ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
      },
    });
  }
  return new Redis(r.url, {
    lazyConnect: lazy,
    enableOfflineQueue: false,
    commandTimeout: r.commandTimeoutMs,
    connectTimeout: r.connectTimeoutMs,
    maxRetriesPerRequest: 0,
    // Measured: auto-pipelining costs more node CPU than it saves at policy-server concurrency.
    enableAutoPipelining: false,
    retryStrategy: (times) => Math.min(50 * times, 1000),
  });
}

export function postgresRecordStore(config: FumidaiConfig, log: (msg: string) => void): PostgresRecordStore {
  const p = config.state.postgres;
  return new PostgresRecordStore({
    url: p.url,
    schema: p.schema,
    spoolDir: join(config.dataDir, 'spool'),
    queryTimeoutMs: p.queryTimeoutMs,
    connectTimeoutMs: Math.min(p.queryTimeoutMs, 2000),
    poolSize: p.poolSize,
    userCacheTtlMs: p.userCacheTtl * 1000,
    preloadUsers: p.preloadUsers,
    log,
  });
}

export async function openDistributedState(config: FumidaiConfig, opts: DistributedOptions): Promise<DistributedState> {
  const { log } = opts;
  const redis = redisClient(config);
  const inner = new RedisCounterStore(redis, {
    layout: counterLayout(config),
    prefix: config.state.redis.keyPrefix,
    hllThreshold: config.state.redis.hllThreshold,
    cluster: config.state.redis.cluster,
  });
  let resyncing: Promise<number> | null = null;
  let closed = false;
  const counters = new GuardedCounterStore(inner, (up, why) => {
    log(up ? `redis: available (${why})` : `redis: unavailable (${why}); policy answers follow policy.storeFailureAction (${config.policy.storeFailureAction})`);
  });
  const records = postgresRecordStore(config, log);

  const resync = (): Promise<number> => {
    if (resyncing) return resyncing;
    resyncing = (async () => {
      try {
        const t0 = await inner.serverTime();
        const open = await records.activeSuspensions();
        await inner.resyncSuspended(open.map((s) => s.sender), t0);
        return open.length;
      } finally {
        resyncing = null;
      }
    })();
    return resyncing;
  };

  let everReady = false;
  redis.on('ready', () => {
    counters.connection(true, everReady ? 'reconnected' : 'connected');
    if (everReady) {
      void counters
        .flushFlags()
        .then((n) => n > 0 && log(`redis: ${n} queued suspended-flag changes applied`))
        .then(() => resync())
        .catch((e: Error) => log(`resync after reconnect failed: ${e.message}`));
    }
    everReady = true;
  });
  redis.on('close', () => {
    if (!closed) counters.connection(false, 'connection closed');
  });
  redis.on('error', () => {
    /* reported through 'close' and failed commands */
  });

  const wait = opts.startWaitMs ?? 5000;
  const deadline = (p: Promise<unknown>): Promise<unknown> =>
    Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${wait} ms`)), wait).unref())]);
  await deadline(redis.connect()).catch((e: Error) => log(`redis: not reachable at start (${e.message}); serving degraded, retrying`));
  await deadline(
    (async () => {
      const m = await records.migrate();
      if (m.to > m.from) log(`postgres: schema ${config.state.postgres.schema} migrated from version ${m.from} to ${m.to}`);
      await records.listen();
    })(),
  ).catch((e: Error) => log(`postgres: not ready at start (${e.message}); serving degraded, retrying`));
  await inner.loadScripts().catch(() => undefined);

  const timer = setInterval(() => void resync().catch((e: Error) => log(`suspension resync failed: ${e.message}`)), config.state.resyncInterval * 1000);
  timer.unref();

  return {
    counters,
    records,
    redis,
    resync,
    health: () => ({ redis: counters.health(), postgres: records.health() }),
    async close() {
      closed = true;
      clearInterval(timer);
      await records.close();
      redis.disconnect();
    },
  };
}

/** `fumidai migrate`: applies pending PostgreSQL migrations and exits. */
export async function migrateCommand(config: FumidaiConfig): Promise<number> {
  if (config.state.backend !== 'redis-postgres') {
    process.stdout.write('fumidai migrate: state.backend is "embedded"; its SQLite file is migrated when serve opens it. Nothing to do.\n');
    return 0;
  }
  const records = postgresRecordStore(config, (m) => process.stderr.write(`${m}\n`));
  try {
    const r = await records.migrate();
    process.stdout.write(
      r.to > r.from
        ? `fumidai migrate: schema ${config.state.postgres.schema} migrated from version ${r.from} to ${r.to}\n`
        : `fumidai migrate: schema ${config.state.postgres.schema} is up to date (version ${r.to})\n`,
    );
    return 0;
  } finally {
    await records.close();
  }
}
