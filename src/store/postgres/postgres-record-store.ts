import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { EpochMs, NoticeKind, SenderId } from '../../engine/types.ts';
import type { AuditEntry, AuditQuery, DecisionRecord, Notice, RecordStore, Suspension, UserSettings } from '../record-store.ts';

/** Same shape as UserPatch in record-store.ts: fields of a user's settings to replace. */
export type UserSettingsPatch = { readonly sender: SenderId } & Readonly<Record<string, unknown>>;
import { migrate, quoteIdent, type MigrationResult } from './migrations.ts';
import { Spool, type SpoolEntry } from './spool.ts';

// Records of the distributed backend: PostgreSQL, shared by every fumidai node.
//
// Hot path: the engine calls user(sender) for every event. Answers come from a
// per-node cache (negative entries too: most senders have no settings row), so a
// request costs no PostgreSQL round trip. putUser() writes the row and, in the same
// statement, pg_notify('fumidai_users_<schema>', sender); every node LISTENs on a
// dedicated connection and drops that entry at once. Entries also expire after
// `userCacheTtlMs` (a safety net); the whole cache is dropped whenever the listener
// (re)connects, since notifications may have been missed while it was away.
// When PostgreSQL is down, cached entries are served even if expired (stale-if-error).
//
// Writes while PostgreSQL is unreachable (docs/distributed.md, "Failures"):
//   - suspend, audit, addNotice: appended to the node's durable spool (fsync) and
//     replayed in order when the database is back; nothing is lost. While the spool is
//     not empty every such write goes through it, so the order is kept.
//   - release, putUser: refused (the error says why); operators retry.
//   - recordDecision: buffered in memory (bounded), written behind in batches.

export interface PostgresRecordStoreOptions {
  readonly url: string;
  readonly schema: string;
  /** Folder of the durable spool. */
  readonly spoolDir: string;
  readonly queryTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  readonly poolSize?: number;
  readonly userCacheTtlMs?: number;
  readonly userCacheMax?: number;
  /** Hold the whole users table in memory when it has at most this many rows (default 50,000; 0 = never). */
  readonly preloadUsers?: number;
  readonly flushMs?: number;
  readonly decisionRetentionMs?: number;
  /** Decisions kept in memory while the database is down; older ones are dropped. */
  readonly decisionBufferMax?: number;
  readonly log?: (msg: string) => void;
}

interface SuspensionRow {
  id: string | number;
  sender: string;
  at: string | number;
  by: string;
  rule: string;
  reason: string;
  figures: Record<string, number | string>;
  auto_release_at: string | number | null;
  released_at: string | number | null;
  released_by: string | null;
}

const num = (v: string | number): number => (typeof v === 'number' ? v : Number(v));
const numOrNull = (v: string | number | null): number | null => (v === null ? null : num(v));

function toSuspension(r: SuspensionRow): Suspension {
  return {
    id: num(r.id),
    sender: r.sender as SenderId,
    at: num(r.at),
    by: r.by,
    rule: r.rule,
    reason: r.reason,
    figures: r.figures,
    autoReleaseAt: numOrNull(r.auto_release_at),
    releasedAt: numOrNull(r.released_at),
    releasedBy: r.released_by,
  };
}

/** A server-side error about the data or the statement (not about reaching the server). */
export function isDataError(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return false;
  // 08: connection exception, 53: insufficient resources, 57: operator intervention (shutdown, cancel/timeout).
  return !/^(08|53|57)/.test(code);
}

export class RecordStoreUnavailableError extends Error {
  override readonly name = 'RecordStoreUnavailableError';
  readonly store = 'postgres';
}

interface CacheEntry {
  value: UserSettings | null;
  at: number;
}

export interface PostgresHealth {
  readonly up: boolean;
  readonly lastError: string | null;
  readonly downSince: number | null;
  readonly spooled: number;
  readonly listening: boolean;
  readonly cachedUsers: number;
  readonly userCache: 'complete' | 'per-sender';
  readonly pendingDecisions: number;
  readonly droppedDecisions: number;
}

export class PostgresRecordStore implements RecordStore {
  readonly pool: pg.Pool;
  private readonly s: string;
  private readonly schema: string;
  private readonly opts: PostgresRecordStoreOptions;
  private readonly spool: Spool;
  private readonly cache = new Map<string, CacheEntry>();
  /** The whole users table (complete mode), or null (per-sender LRU cache mode). */
  private all: Map<string, UserSettings> | null = null;
  /** When the full copy was last loaded (ms). */
  allLoadedAt = 0;
  private readonly inflight = new Map<string, Promise<UserSettings | null>>();
  private readonly channel: string;
  private readonly log: (msg: string) => void;
  private listener: pg.Client | null = null;
  private listening = false;
  private pending: DecisionRecord[] = [];
  private droppedDecisions = 0;
  private up = true;
  private downSince: number | null = null;
  private lastError: string | null = null;
  private retryAt = 0;
  private draining: Promise<void> | null = null;
  private closed = false;
  private migrated = false;
  private lastPrune = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Statements sent (for metrics). */
  queries = 0;

  constructor(opts: PostgresRecordStoreOptions) {
    this.opts = opts;
    this.schema = opts.schema;
    this.s = quoteIdent(opts.schema);
    // An identifier: at most 63 bytes (schema names are ASCII).
    this.channel = `fumidai_users_${opts.schema}`.slice(0, 63);
    this.log = opts.log ?? (() => {});
    this.spool = new Spool(opts.spoolDir);
    this.pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.poolSize ?? 4,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 1000,
      query_timeout: opts.queryTimeoutMs ?? 2000,
      statement_timeout: opts.queryTimeoutMs ?? 2000,
      idleTimeoutMillis: 30_000,
      application_name: 'fumidai',
    });
    // An idle client losing its connection must not crash the process.
    this.pool.on('error', (e) => this.markDown(e));
    const flush = setInterval(() => void this.flushDecisions().catch(() => undefined), opts.flushMs ?? 500);
    const heal = setInterval(() => void this.heal(), 1000);
    flush.unref();
    heal.unref();
    this.timers.push(flush, heal);
  }

  /** Applies pending migrations (advisory lock: safe when several nodes start at once). */
  async migrate(): Promise<MigrationResult> {
    const client = await this.pool.connect().catch((e: unknown) => {
      this.markDown(e);
      throw e;
    });
    try {
      const r = await migrate(client, this.schema);
      this.migrated = true;
      return r;
    } finally {
      client.release();
    }
  }

  /** Starts the LISTEN connection for cache invalidation (reconnects by itself). */
  async listen(): Promise<void> {
    if (this.closed || this.listener !== null) return;
    const client = new pg.Client({ connectionString: this.opts.url, connectionTimeoutMillis: this.opts.connectTimeoutMs ?? 1000, application_name: 'fumidai-listen' });
    this.listener = client;
    const lost = (why: string): void => {
      if (this.listener !== client) return;
      this.listener = null;
      this.listening = false;
      client.end().catch(() => undefined);
      if (this.closed) return;
      // The cache is kept (served stale while the database is down) and dropped once the
      // listener is back, since notifications may have been missed in between.
      this.log(`postgres: cache invalidation listener lost (${why}); reconnecting`);
      // Probably the server or the network: check before trusting the pool again.
      this.markDown(new Error(`listener lost: ${why}`));
    };
    client.on('error', (e) => lost(e.message));
    client.on('end', () => lost('connection ended'));
    client.on('notification', (n) => {
      if (n.channel !== this.channel) return;
      if (n.payload === undefined || n.payload === '*') {
        this.cache.clear();
        if (this.all !== null) void this.preload().catch((e: Error) => this.log(`postgres: user reload failed: ${e.message}`));
      } else {
        this.cache.delete(n.payload);
        if (this.all !== null) void this.reloadUser(n.payload).catch((e: Error) => this.log(`postgres: user reload failed: ${e.message}`));
      }
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
      // Anything cached before the listener was up may have missed a notification.
      this.cache.clear();
      await this.preload();
      this.listening = true;
    } catch (e) {
      lost((e as Error).message);
      throw e;
    }
  }

  health(): PostgresHealth {
    return {
      up: this.up,
      lastError: this.lastError,
      downSince: this.downSince,
      spooled: this.spool.size(),
      listening: this.listening,
      cachedUsers: this.all?.size ?? this.cache.size,
      userCache: this.userCacheMode(),
      pendingDecisions: this.pending.length,
      droppedDecisions: this.droppedDecisions,
    };
  }

  private markDown(e: unknown): void {
    const msg = (e as Error).message ?? String(e);
    this.lastError = msg;
    this.retryAt = Date.now() + 1000;
    if (this.up) {
      this.up = false;
      this.downSince = Date.now();
      this.log(`postgres: unavailable (${msg}); record writes go to the local spool`);
    }
  }

  private markUp(): void {
    if (!this.up) {
      this.up = true;
      this.log(`postgres: available again after ${Math.round((Date.now() - (this.downSince ?? Date.now())) / 1000)} s`);
      this.downSince = null;
    }
  }

  /**
   * One statement. A failure to reach the server marks the store down; while it is down,
   * statements fail at once (no request waits for a timeout) and only the background
   * probe (heal, every second) tries the server, so recovery is noticed within a second.
   */
  private async q<R extends pg.QueryResultRow>(sql: string, args: unknown[] = [], probe = false): Promise<pg.QueryResult<R>> {
    if (!this.up && !probe) throw new RecordStoreUnavailableError(`PostgreSQL unavailable: ${this.lastError}`);
    this.queries++;
    try {
      const r = await this.pool.query<R>(sql, args);
      this.markUp();
      return r;
    } catch (e) {
      if (e instanceof Error) (e as Error & { store?: string }).store = 'postgres';
      if (!isDataError(e)) this.markDown(e);
      throw e;
    }
  }

  /** Background: probe while down, drain the spool, restart the listener. */
  private async heal(): Promise<void> {
    if (this.closed) return;
    if (!this.up && Date.now() >= this.retryAt) {
      await this.q('SELECT 1', [], true).catch(() => undefined);
    }
    if (this.up && !this.migrated) await this.migrate().catch((e: Error) => this.log(`postgres: migration failed: ${e.message}`));
    if (this.up && this.migrated && this.spool.size() > 0) await this.drainSpool().catch(() => undefined);
    if (this.up && this.listener === null) await this.listen().catch(() => undefined);
  }

  /** Replays the spool now (tests and shutdown call it; the heal timer does too). */
  drainSpool(): Promise<void> {
    if (this.draining) return this.draining;
    this.draining = (async () => {
      try {
        const n = await this.spool.drain((e) => this.applySpooled(e), isDataError);
        if (n > 0) this.log(`postgres: ${n} spooled record writes replayed`);
      } finally {
        this.draining = null;
      }
    })();
    return this.draining;
  }

  private async applySpooled(e: SpoolEntry): Promise<void> {
    const r = e.row;
    switch (e.op) {
      case 'suspend':
        await this.q(
          `INSERT INTO ${this.s}.suspensions (sender, at, by, rule, reason, figures, auto_release_at, spool_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
           ON CONFLICT DO NOTHING`,
          [r.sender, r.at, r.by, r.rule, r.reason, JSON.stringify(r.figures), r.autoReleaseAt, e.id],
        );
        return;
      case 'audit':
        await this.q(`INSERT INTO ${this.s}.audit (t, sender, actor, action, detail, spool_id) VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING`, [
          r.t,
          r.sender,
          r.actor,
          r.action,
          r.detail,
          e.id,
        ]);
        return;
      case 'notice':
        await this.q(`INSERT INTO ${this.s}.notices (t, sender, kind, data, spool_id) VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING`, [
          r.t,
          r.sender,
          r.kind,
          JSON.stringify(r.data),
          e.id,
        ]);
        return;
    }
  }

  /** Writes through PostgreSQL, or to the spool when it cannot be reached (or the spool is not empty). */
  private async writeOrSpool(entry: SpoolEntry, direct: () => Promise<void>): Promise<'direct' | 'spooled'> {
    if (this.spool.size() === 0 && this.up) {
      try {
        await direct();
        return 'direct';
      } catch (e) {
        if (isDataError(e)) throw e;
      }
    }
    this.spool.append(entry);
    return 'spooled';
  }

  private refuseWhileSpooling(what: string): void {
    if (this.spool.size() > 0) throw new RecordStoreUnavailableError(`${what} refused: ${this.spool.size()} record writes made during a PostgreSQL outage are still being replayed; retry shortly`);
  }

  // ---- users ---------------------------------------------------------------------------

  /**
   * Complete mode: when the users table is small enough, every node holds all of it, so
   * user() never queries (an absent sender has no settings) and a PostgreSQL outage does
   * not touch the policy path at all. Changes arrive by NOTIFY (one row re-read).
   */
  private async preload(): Promise<void> {
    const max = this.opts.preloadUsers ?? 50_000;
    if (max <= 0) return;
    const n = await this.q<{ n: string }>(`SELECT count(*) AS n FROM ${this.s}.users`);
    if (Number(n.rows[0]?.n ?? 0) > max) {
      if (this.all !== null) this.log(`postgres: more than ${max} users with settings; per-sender cache instead of a full copy`);
      this.all = null;
      return;
    }
    const r = await this.q<{ sender: string; settings: UserSettings }>(`SELECT sender, settings FROM ${this.s}.users`);
    this.all = new Map(r.rows.map((x) => [x.sender, x.settings]));
    this.allLoadedAt = Date.now();
  }

  private async reloadUser(sender: string): Promise<void> {
    const r = await this.q<{ settings: UserSettings }>(`SELECT settings FROM ${this.s}.users WHERE sender = $1`, [sender]);
    if (this.all === null) return;
    const v = r.rows[0]?.settings;
    if (v === undefined) this.all.delete(sender);
    else this.all.set(sender, v);
  }

  /** How user settings are cached: the whole table, or per sender. */
  userCacheMode(): 'complete' | 'per-sender' {
    return this.all === null ? 'per-sender' : 'complete';
  }

  async user(sender: SenderId): Promise<UserSettings | null> {
    if (this.all !== null) return this.all.get(sender) ?? null;
    const hit = this.cache.get(sender);
    const ttl = this.opts.userCacheTtlMs ?? 60_000;
    if (hit !== undefined && (Date.now() - hit.at < ttl || !this.up)) return hit.value;
    const running = this.inflight.get(sender);
    if (running) return running;
    const p = (async () => {
      try {
        const r = await this.q<{ settings: UserSettings }>(`SELECT settings FROM ${this.s}.users WHERE sender = $1`, [sender]);
        const value = r.rows[0]?.settings ?? null;
        if (this.cache.size >= (this.opts.userCacheMax ?? 200_000)) this.cache.delete(this.cache.keys().next().value!);
        this.cache.set(sender, { value, at: Date.now() });
        return value;
      } catch (e) {
        if (hit !== undefined) return hit.value; // stale-if-error
        throw e;
      } finally {
        this.inflight.delete(sender);
      }
    })();
    this.inflight.set(sender, p);
    return p;
  }

  async putUser(settings: UserSettings): Promise<void> {
    this.refuseWhileSpooling('settings change');
    await this.q(
      `WITH up AS (
         INSERT INTO ${this.s}.users (sender, settings, updated_at) VALUES ($1, $2, now())
         ON CONFLICT (sender) DO UPDATE SET settings = excluded.settings, updated_at = now()
         RETURNING sender)
       SELECT pg_notify($3, sender) FROM up`,
      [settings.sender, JSON.stringify(settings), this.channel],
    );
    this.cache.set(settings.sender, { value: settings, at: Date.now() });
    this.all?.set(settings.sender, settings);
  }

  async patchUsers(patches: readonly UserSettingsPatch[], now: EpochMs): Promise<void> {
    this.refuseWhileSpooling('settings import');
    if (patches.length === 0) return;
    if (!this.up) throw new RecordStoreUnavailableError(`PostgreSQL unavailable: ${this.lastError}`);
    const client = await this.pool.connect().catch((e: unknown) => {
      this.markDown(e);
      throw e;
    });
    const merged = new Map<string, UserSettings>();
    try {
      this.queries += 4;
      await client.query('BEGIN');
      const senders = [...new Set(patches.map((p) => p.sender))];
      const r = await client.query<{ sender: string; settings: UserSettings }>(`SELECT sender, settings FROM ${this.s}.users WHERE sender = ANY($1) FOR UPDATE`, [senders]);
      for (const row of r.rows) merged.set(row.sender, row.settings);
      // As an RFC 7396 merge patch (SQLite's json_patch): null removes a field, absent keeps it.
      for (const p of patches) {
        const next: Record<string, unknown> = { ...(merged.get(p.sender) ?? { sender: p.sender, limits: null, bulkWindows: [], createdAt: now }) };
        for (const [k, v] of Object.entries(p)) {
          if (v === null) delete next[k];
          else if (v !== undefined) next[k] = v;
        }
        merged.set(p.sender, next as unknown as UserSettings);
      }
      const list = [...merged.values()];
      await client.query(
        `INSERT INTO ${this.s}.users (sender, settings, updated_at)
         SELECT s, j::json, now() FROM unnest($1::text[], $2::text[]) AS x(s, j)
         ON CONFLICT (sender) DO UPDATE SET settings = excluded.settings, updated_at = now()`,
        [list.map((u) => u.sender), list.map((u) => JSON.stringify(u))],
      );
      // Delivered at commit. Many changes: one "drop everything" notification.
      if (list.length > 100) await client.query('SELECT pg_notify($1, $2)', [this.channel, '*']);
      else await client.query('SELECT pg_notify($1, s) FROM unnest($2::text[]) AS x(s)', [this.channel, list.map((u) => u.sender)]);
      await client.query('COMMIT');
      this.markUp();
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      if (!isDataError(e)) this.markDown(e);
      throw e;
    } finally {
      client.release();
    }
    for (const [sender, settings] of merged) {
      this.cache.set(sender, { value: settings, at: Date.now() });
      this.all?.set(sender, settings);
    }
  }

  // ---- suspensions ---------------------------------------------------------------------

  async activeSuspension(sender: SenderId): Promise<Suspension | null> {
    const r = await this.q<SuspensionRow>(`SELECT * FROM ${this.s}.suspensions WHERE sender = $1 AND released_at IS NULL ORDER BY id DESC LIMIT 1`, [sender]);
    return r.rows[0] ? toSuspension(r.rows[0]) : null;
  }

  async activeSuspensions(): Promise<readonly Suspension[]> {
    const r = await this.q<SuspensionRow>(`SELECT * FROM ${this.s}.suspensions WHERE released_at IS NULL ORDER BY id`);
    return r.rows.map(toSuspension);
  }

  async suspensionHistory(sender: SenderId): Promise<readonly Suspension[]> {
    const r = await this.q<SuspensionRow>(`SELECT * FROM ${this.s}.suspensions WHERE sender = $1 ORDER BY id DESC`, [sender]);
    return r.rows.map(toSuspension);
  }

  async suspend(s: Omit<Suspension, 'id' | 'releasedAt' | 'releasedBy'>): Promise<Suspension> {
    let result: Suspension | null = null;
    const id = randomUUID();
    const how = await this.writeOrSpool({ op: 'suspend', id, row: { ...s } }, async () => {
      // One statement: insert unless an open suspension exists (unique partial index), else return that one.
      const r = await this.q<SuspensionRow>(
        `WITH ins AS (
           INSERT INTO ${this.s}.suspensions (sender, at, by, rule, reason, figures, auto_release_at)
           VALUES ($1,$2,$3,$4,$5,$6,$7)
           ON CONFLICT (sender) WHERE released_at IS NULL DO NOTHING
           RETURNING *)
         SELECT * FROM ins
         UNION ALL
         SELECT * FROM ${this.s}.suspensions WHERE sender = $1 AND released_at IS NULL AND NOT EXISTS (SELECT 1 FROM ins)
         LIMIT 1`,
        [s.sender, s.at, s.by, s.rule, s.reason, JSON.stringify(s.figures), s.autoReleaseAt],
      );
      // A concurrent insert committed after this statement's snapshot: read it now.
      const row = r.rows[0] ?? (await this.q<SuspensionRow>(`SELECT * FROM ${this.s}.suspensions WHERE sender = $1 AND released_at IS NULL`, [s.sender])).rows[0];
      if (!row) throw new Error(`suspension of ${s.sender} neither inserted nor found`);
      result = toSuspension(row);
    });
    if (how === 'spooled' || result === null) {
      this.log(`postgres: suspension of ${s.sender} spooled locally (${this.spool.size()} waiting)`);
      // Provisional record: id 0 until the spool is replayed.
      return { ...s, id: 0, releasedAt: null, releasedBy: null };
    }
    return result;
  }

  async release(sender: SenderId, at: EpochMs, by: string): Promise<Suspension | null> {
    this.refuseWhileSpooling('release');
    const r = await this.q<SuspensionRow>(
      `UPDATE ${this.s}.suspensions SET released_at = $2, released_by = $3 WHERE sender = $1 AND released_at IS NULL RETURNING *`,
      [sender, at, by],
    );
    return r.rows[0] ? toSuspension(r.rows[0]) : null;
  }

  async lastAutoRelease(sender: SenderId): Promise<EpochMs | null> {
    try {
      const r = await this.q<{ t: string | null }>(`SELECT max(released_at) AS t FROM ${this.s}.suspensions WHERE sender = $1 AND released_by = 'auto'`, [sender]);
      return numOrNull(r.rows[0]?.t ?? null);
    } catch (e) {
      if (isDataError(e)) throw e;
      // Unknown while the database is down. Answer "released automatically just now", so
      // the unblock-loop guard gives an automatic suspension no automatic release: it stays
      // until an operator releases it (fail safe), and the suspension itself is not lost.
      return Date.now();
    }
  }

  async dueAutoReleases(now: EpochMs): Promise<readonly Suspension[]> {
    const r = await this.q<SuspensionRow>(
      `SELECT * FROM ${this.s}.suspensions WHERE released_at IS NULL AND auto_release_at IS NOT NULL AND auto_release_at <= $1 ORDER BY id`,
      [now],
    );
    return r.rows.map(toSuspension);
  }

  // ---- audit and notices ---------------------------------------------------------------

  async audit(e: Omit<AuditEntry, 'id'>): Promise<void> {
    await this.writeOrSpool({ op: 'audit', id: randomUUID(), row: { ...e } }, async () => {
      await this.q(`INSERT INTO ${this.s}.audit (t, sender, actor, action, detail) VALUES ($1,$2,$3,$4,$5)`, [e.t, e.sender, e.actor, e.action, e.detail]);
    });
  }

  async auditLog(q: AuditQuery): Promise<readonly AuditEntry[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.sender !== undefined) {
      args.push(q.sender);
      where.push(`sender = $${args.length}`);
    }
    if (q.since !== undefined) {
      args.push(q.since);
      where.push(`t >= $${args.length}`);
    }
    args.push(q.limit);
    const r = await this.q<{ id: string; t: string; sender: string | null; actor: string; action: string; detail: string }>(
      `SELECT id, t, sender, actor, action, detail FROM ${this.s}.audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${args.length}`,
      args,
    );
    return r.rows.map((x) => ({ id: num(x.id), t: num(x.t), sender: x.sender as SenderId | null, actor: x.actor, action: x.action, detail: x.detail }));
  }

  async addNotice(n: Omit<Notice, 'id' | 'deliveredAt'>): Promise<void> {
    await this.writeOrSpool({ op: 'notice', id: randomUUID(), row: { ...n } }, async () => {
      await this.q(`INSERT INTO ${this.s}.notices (t, sender, kind, data) VALUES ($1,$2,$3,$4)`, [n.t, n.sender, n.kind, JSON.stringify(n.data)]);
    });
  }

  async notices(sender: SenderId | null, limit: number): Promise<readonly Notice[]> {
    const r =
      sender === null
        ? await this.q<NoticeRow>(`SELECT * FROM ${this.s}.notices ORDER BY id DESC LIMIT $1`, [limit])
        : await this.q<NoticeRow>(`SELECT * FROM ${this.s}.notices WHERE sender = $1 ORDER BY id DESC LIMIT $2`, [sender, limit]);
    return r.rows.map((x) => ({
      id: num(x.id),
      t: num(x.t),
      sender: x.sender as SenderId,
      kind: x.kind as NoticeKind,
      data: x.data,
      deliveredAt: numOrNull(x.delivered_at),
    }));
  }

  // ---- decisions (written behind) ----------------------------------------------------

  recordDecision(d: DecisionRecord): void {
    this.pending.push(d);
    const max = this.opts.decisionBufferMax ?? 50_000;
    if (this.pending.length > max) {
      const drop = this.pending.length - max;
      this.pending.splice(0, drop);
      this.droppedDecisions += drop;
    }
    if (this.pending.length >= 5000) void this.flushDecisions().catch(() => undefined);
  }

  private flushing: Promise<void> | null = null;

  private flushDecisions(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.pending.length === 0 || !this.up) return Promise.resolve();
    const batch = this.pending.splice(0, 5000);
    this.flushing = (async () => {
      try {
        await this.q(
          `INSERT INTO ${this.s}.decisions (t, sender, ip, stage, action, code, detail)
           SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[])`,
          [batch.map((d) => d.t), batch.map((d) => d.sender), batch.map((d) => d.ip), batch.map((d) => d.stage), batch.map((d) => d.action), batch.map((d) => d.code), batch.map((d) => d.detail)],
        );
        if (Date.now() - this.lastPrune > 600_000) {
          this.lastPrune = Date.now();
          await this.q(`DELETE FROM ${this.s}.decisions WHERE t < $1`, [batch[batch.length - 1]!.t - (this.opts.decisionRetentionMs ?? 7 * 86400_000)]);
        }
      } catch (e) {
        if (isDataError(e)) {
          this.droppedDecisions += batch.length;
          this.log(`postgres: ${batch.length} decision records dropped: ${(e as Error).message}`);
        } else {
          this.pending.unshift(...batch);
        }
        throw e;
      } finally {
        this.flushing = null;
      }
    })();
    return this.flushing;
  }

  async recentDecisions(sender: SenderId, limit: number): Promise<readonly DecisionRecord[]> {
    await this.flushDecisions().catch(() => undefined);
    const r = await this.q<{ t: string; sender: string; ip: string | null; stage: string; action: string; code: number | null; detail: string }>(
      `SELECT t, sender, ip, stage, action, code, detail FROM ${this.s}.decisions WHERE sender = $1 ORDER BY t DESC, id DESC LIMIT $2`,
      [sender, limit],
    );
    return r.rows.map((x) => ({ t: num(x.t), sender: x.sender as SenderId, ip: x.ip, stage: x.stage, action: x.action, code: x.code, detail: x.detail }));
  }

  /** Writes buffered decisions and replays the spool; throws when the database is unreachable. */
  async flush(): Promise<void> {
    while (this.pending.length > 0) {
      if (!this.up) throw new RecordStoreUnavailableError(`PostgreSQL unavailable: ${this.lastError}; ${this.pending.length} decision records not written`);
      await this.flushDecisions();
    }
    if (this.spool.size() > 0) await this.drainSpool();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush().catch((e: Error) => this.log(`postgres: at close, not everything was written (${e.message}); spooled records stay in ${this.opts.spoolDir}`));
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    const l = this.listener;
    this.listener = null;
    await l?.end().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }
}

interface NoticeRow {
  id: string;
  t: string;
  sender: string;
  kind: string;
  data: Record<string, number | string>;
  delivered_at: string | null;
}
