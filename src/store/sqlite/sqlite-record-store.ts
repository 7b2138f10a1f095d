import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { EpochMs, NoticeKind, SenderId } from '../../engine/types.ts';
import type {
  AuditEntry,
  AuditQuery,
  DecisionRecord,
  Notice,
  PoolConsent,
  RecordStore,
  Suspension,
  UserPatch,
  UserSettings,
} from '../record-store.ts';
import { MIGRATIONS } from './migrations.ts';

// Records of the embedded backend: one SQLite file in WAL mode. Suspensions, releases,
// audit entries and notices are committed before the call resolves (synchronous=FULL),
// so kill -9 cannot lose them. Decision history is buffered and written in one
// transaction every `flushMs` (100 ms), off the request path.

interface SuspensionRow {
  id: number;
  sender: string;
  at: number;
  by: string;
  rule: string;
  reason: string;
  figures: string;
  auto_release_at: number | null;
  released_at: number | null;
  released_by: string | null;
}

function toSuspension(r: SuspensionRow): Suspension {
  return {
    id: r.id,
    sender: r.sender as SenderId,
    at: r.at,
    by: r.by,
    rule: r.rule,
    reason: r.reason,
    figures: JSON.parse(r.figures) as Record<string, number | string>,
    autoReleaseAt: r.auto_release_at,
    releasedAt: r.released_at,
    releasedBy: r.released_by,
  };
}

export interface SqliteRecordStoreOptions {
  /** File path, or ":memory:" for replay and tests. */
  readonly file: string;
  readonly flushMs?: number;
  /** Decisions older than this are pruned at each flush. */
  readonly decisionRetentionMs?: number;
  /** False drops decision history (replay prints every decision itself). Default true. */
  readonly decisionHistory?: boolean;
}

export class SqliteRecordStore implements RecordStore {
  readonly db: Database.Database;
  private readonly users = new Map<string, UserSettings | null>();
  private pending: DecisionRecord[] = [];
  private readonly timer: NodeJS.Timeout | null;
  private readonly retention: number;
  private readonly keepDecisions: boolean;
  private readonly stmt;

  constructor(opts: SqliteRecordStoreOptions) {
    if (opts.file !== ':memory:') mkdirSync(dirname(opts.file), { recursive: true });
    this.db = new Database(opts.file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    migrate(this.db);
    this.retention = opts.decisionRetentionMs ?? 7 * 86400_000;
    this.keepDecisions = opts.decisionHistory ?? true;
    this.stmt = {
      user: this.db.prepare<[string], { settings: string }>('SELECT settings FROM users WHERE sender = ?'),
      putUser: this.db.prepare('INSERT INTO users (sender, settings) VALUES (?, ?) ON CONFLICT(sender) DO UPDATE SET settings = excluded.settings'),
      // RFC 7396 merge patch: given keys replace, null removes, other keys stay.
      patchUser: this.db.prepare('INSERT INTO users (sender, settings) VALUES (?, ?) ON CONFLICT(sender) DO UPDATE SET settings = json_patch(users.settings, ?)'),
      active: this.db.prepare<[string], SuspensionRow>('SELECT * FROM suspensions WHERE sender = ? AND released_at IS NULL ORDER BY id DESC LIMIT 1'),
      allActive: this.db.prepare<[], SuspensionRow>('SELECT * FROM suspensions WHERE released_at IS NULL ORDER BY id'),
      history: this.db.prepare<[string], SuspensionRow>('SELECT * FROM suspensions WHERE sender = ? ORDER BY id DESC'),
      insertSuspension: this.db.prepare(
        'INSERT INTO suspensions (sender, at, by, rule, reason, figures, auto_release_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      byId: this.db.prepare<[number | bigint], SuspensionRow>('SELECT * FROM suspensions WHERE id = ?'),
      release: this.db.prepare('UPDATE suspensions SET released_at = ?, released_by = ? WHERE id = ?'),
      lastAuto: this.db.prepare<[string], { t: number | null }>(
        "SELECT MAX(released_at) AS t FROM suspensions WHERE sender = ? AND released_by = 'auto'",
      ),
      due: this.db.prepare<[number], SuspensionRow>(
        'SELECT * FROM suspensions WHERE released_at IS NULL AND auto_release_at IS NOT NULL AND auto_release_at <= ?',
      ),
      audit: this.db.prepare('INSERT INTO audit (t, sender, actor, action, detail) VALUES (?, ?, ?, ?, ?)'),
      notice: this.db.prepare('INSERT INTO notices (t, sender, kind, data) VALUES (?, ?, ?, ?)'),
      decision: this.db.prepare('INSERT INTO decisions (t, sender, ip, stage, action, code, detail) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      recent: this.db.prepare<[string, number], DecisionRecord>(
        'SELECT t, sender, ip, stage, action, code, detail FROM decisions WHERE sender = ? ORDER BY t DESC, id DESC LIMIT ?',
      ),
      prune: this.db.prepare('DELETE FROM decisions WHERE t < ?'),
    };
    this.timer = opts.flushMs === 0 ? null : setInterval(() => this.flushSync(), opts.flushMs ?? 100);
    this.timer?.unref();
  }

  /** Answers from the in-process cache, synchronously (no promise on the hot path). */
  user(sender: SenderId): UserSettings | null {
    return this.userSync(sender);
  }

  /** Synchronous variant for the hot path: the cache answers almost always. */
  userSync(sender: SenderId): UserSettings | null {
    const cached = this.users.get(sender);
    if (cached !== undefined) return cached;
    const row = this.stmt.user.get(sender);
    const settings = row ? (JSON.parse(row.settings) as UserSettings) : null;
    if (this.users.size > 200_000) this.users.clear();
    this.users.set(sender, settings);
    return settings;
  }

  async putUser(settings: UserSettings): Promise<void> {
    this.stmt.putUser.run(settings.sender, JSON.stringify(settings));
    this.users.set(settings.sender, settings);
  }

  async patchUsers(patches: readonly UserPatch[], now: EpochMs): Promise<void> {
    if (patches.length === 0) return;
    this.db.transaction(() => {
      for (const p of patches) {
        const { sender, ...fields } = p;
        const patch = JSON.stringify(fields);
        const fresh = JSON.stringify({ sender, limits: null, bulkWindows: [], createdAt: now, ...stripNulls(fields) });
        this.stmt.patchUser.run(sender, fresh, patch);
        this.users.delete(sender);
      }
    })();
  }

  async recordPoolConsent(sender: SenderId, consent: PoolConsent): Promise<UserSettings> {
    const tx = this.db.transaction(() => {
      this.db.prepare('INSERT INTO pool_consents (sender, at, version, via) VALUES (?, ?, ?, ?)').run(sender, consent.at, consent.version, consent.via);
      const row = this.stmt.user.get(sender);
      const current: UserSettings = row ? (JSON.parse(row.settings) as UserSettings) : { sender, limits: null, bulkWindows: [], createdAt: consent.at };
      const settings: UserSettings = { ...current, poolConsent: consent };
      this.stmt.putUser.run(sender, JSON.stringify(settings));
      return settings;
    });
    const settings = tx.immediate();
    this.users.set(sender, settings);
    return settings;
  }

  async poolConsents(sender: SenderId): Promise<readonly PoolConsent[]> {
    return this.db.prepare<[string], PoolConsent>('SELECT at, version, via FROM pool_consents WHERE sender = ? ORDER BY id DESC').all(sender);
  }

  async activeSuspension(sender: SenderId): Promise<Suspension | null> {
    const row = this.stmt.active.get(sender);
    return row ? toSuspension(row) : null;
  }

  async activeSuspensions(): Promise<readonly Suspension[]> {
    return this.stmt.allActive.all().map(toSuspension);
  }

  async suspensionHistory(sender: SenderId): Promise<readonly Suspension[]> {
    return this.stmt.history.all(sender).map(toSuspension);
  }

  async suspend(s: Omit<Suspension, 'id' | 'releasedAt' | 'releasedBy'>): Promise<Suspension> {
    const tx = this.db.transaction(() => {
      const open = this.stmt.active.get(s.sender);
      if (open) return toSuspension(open);
      const info = this.stmt.insertSuspension.run(s.sender, s.at, s.by, s.rule, s.reason, JSON.stringify(s.figures), s.autoReleaseAt);
      return toSuspension(this.stmt.byId.get(info.lastInsertRowid)!);
    });
    return tx.immediate();
  }

  async release(sender: SenderId, at: EpochMs, by: string): Promise<Suspension | null> {
    const tx = this.db.transaction(() => {
      const open = this.stmt.active.get(sender);
      if (!open) return null;
      this.stmt.release.run(at, by, open.id);
      return toSuspension(this.stmt.byId.get(open.id)!);
    });
    return tx.immediate();
  }

  async lastAutoRelease(sender: SenderId): Promise<EpochMs | null> {
    return this.stmt.lastAuto.get(sender)?.t ?? null;
  }

  async dueAutoReleases(now: EpochMs): Promise<readonly Suspension[]> {
    return this.stmt.due.all(now).map(toSuspension);
  }

  async audit(e: Omit<AuditEntry, 'id'>): Promise<void> {
    this.stmt.audit.run(e.t, e.sender, e.actor, e.action, e.detail);
  }

  async auditLog(q: AuditQuery): Promise<readonly AuditEntry[]> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (q.sender !== undefined) {
      where.push('sender = ?');
      args.push(q.sender);
    }
    if (q.since !== undefined) {
      where.push('t >= ?');
      args.push(q.since);
    }
    const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    return this.db.prepare<unknown[], AuditEntry>(sql).all(...args, q.limit);
  }

  async addNotice(n: Omit<Notice, 'id' | 'deliveredAt'>): Promise<void> {
    this.stmt.notice.run(n.t, n.sender, n.kind, JSON.stringify(n.data));
  }

  async notices(sender: SenderId | null, limit: number): Promise<readonly Notice[]> {
    const rows = sender === null
      ? this.db.prepare<[number], NoticeRow>('SELECT * FROM notices ORDER BY id DESC LIMIT ?').all(limit)
      : this.db.prepare<[string, number], NoticeRow>('SELECT * FROM notices WHERE sender = ? ORDER BY id DESC LIMIT ?').all(sender, limit);
    return rows.map((r) => ({
      id: r.id,
      t: r.t,
      sender: r.sender as SenderId,
      kind: r.kind as NoticeKind,
      data: JSON.parse(r.data) as Record<string, number | string>,
      deliveredAt: r.delivered_at,
    }));
  }

  recordDecision(d: DecisionRecord): void {
    if (!this.keepDecisions) return;
    this.pending.push(d);
    // Small, frequent batches: one transaction of a few hundred rows blocks the event loop
    // for about a millisecond, where thousands would stall every policy reply behind it.
    if (this.pending.length >= 1000) this.flushSync();
  }

  async recentDecisions(sender: SenderId, limit: number): Promise<readonly DecisionRecord[]> {
    this.flushSync();
    return this.stmt.recent.all(sender, limit);
  }

  private flushSync(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    const newest = batch[batch.length - 1]!.t;
    this.db.transaction(() => {
      for (const d of batch) this.stmt.decision.run(d.t, d.sender, d.ip, d.stage, d.action, d.code, d.detail);
      this.stmt.prune.run(newest - this.retention);
    })();
  }

  async flush(): Promise<void> {
    this.flushSync();
  }

  /** Key-value blobs, e.g. the counter snapshot. */
  getBlob(key: string): Buffer | null {
    const row = this.db.prepare<[string], { value: Buffer }>('SELECT value FROM blobs WHERE key = ?').get(key);
    return row?.value ?? null;
  }

  putBlob(key: string, value: Buffer): void {
    this.db.prepare('INSERT INTO blobs (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.flushSync();
    this.db.close();
  }
}

function stripNulls(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== null && v !== undefined) out[k] = v;
  return out;
}

interface NoticeRow {
  id: number;
  t: number;
  sender: string;
  kind: string;
  data: string;
  delivered_at: number | null;
}

function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  const row = db.prepare<[], { version: number }>('SELECT version FROM schema_version').get();
  let version = row?.version ?? 0;
  if (!row) db.prepare('INSERT INTO schema_version (version) VALUES (0)').run();
  for (const [i, sql] of MIGRATIONS.entries()) {
    if (i < version) continue;
    db.transaction(() => {
      db.exec(sql);
      db.prepare('UPDATE schema_version SET version = ?').run(i + 1);
    })();
    version = i + 1;
  }
}
