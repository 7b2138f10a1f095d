import type { PoolClient } from 'pg';

// Versioned schema of the PostgreSQL record store. Append new steps; never edit old ones.
// `fumidai migrate` applies them, and so does `fumidai serve` at start; both take a
// transaction-scoped advisory lock first, so nodes starting at the same moment apply
// each step exactly once (the others wait, then find nothing left to do).
//
// `%s` stands for the quoted schema name. JSON columns are `json` (not jsonb) so that
// objects come back with their keys in the order they were written, as from SQLite.

export const PG_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE %s.users (
    sender text PRIMARY KEY,
    settings json NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
  );
  CREATE TABLE %s.suspensions (
    id bigserial PRIMARY KEY,
    sender text NOT NULL,
    at bigint NOT NULL,
    by text NOT NULL,
    rule text NOT NULL,
    reason text NOT NULL,
    figures json NOT NULL,
    auto_release_at bigint,
    released_at bigint,
    released_by text,
    spool_id uuid UNIQUE
  );
  CREATE INDEX suspensions_sender ON %s.suspensions (sender, id);
  CREATE UNIQUE INDEX suspensions_one_open ON %s.suspensions (sender) WHERE released_at IS NULL;
  CREATE INDEX suspensions_due ON %s.suspensions (auto_release_at) WHERE released_at IS NULL AND auto_release_at IS NOT NULL;
  CREATE TABLE %s.audit (
    id bigserial PRIMARY KEY,
    t bigint NOT NULL,
    sender text,
    actor text NOT NULL,
    action text NOT NULL,
    detail text NOT NULL,
    spool_id uuid UNIQUE
  );
  CREATE INDEX audit_sender ON %s.audit (sender, id);
  CREATE INDEX audit_t ON %s.audit (t);
  CREATE TABLE %s.notices (
    id bigserial PRIMARY KEY,
    t bigint NOT NULL,
    sender text NOT NULL,
    kind text NOT NULL,
    data json NOT NULL,
    delivered_at bigint,
    spool_id uuid UNIQUE
  );
  CREATE INDEX notices_sender ON %s.notices (sender, id);
  CREATE TABLE %s.decisions (
    id bigserial PRIMARY KEY,
    t bigint NOT NULL,
    sender text NOT NULL,
    ip text,
    stage text NOT NULL,
    action text NOT NULL,
    code integer,
    detail text NOT NULL
  );
  CREATE INDEX decisions_sender ON %s.decisions (sender, t);
  CREATE INDEX decisions_t ON %s.decisions (t);
  `,
];

export function quoteIdent(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`postgres schema name "${name}": use lower-case letters, digits and _`);
  return `"${name}"`;
}

export interface MigrationResult {
  readonly from: number;
  readonly to: number;
}

/** Applies pending migrations in one transaction under an advisory lock. */
export async function migrate(client: PoolClient, schema: string): Promise<MigrationResult> {
  const s = quoteIdent(schema);
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`fumidai.migrate.${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    const r = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${s}.schema_migrations`);
    const from = r.rows[0]?.v ?? 0;
    if (from > PG_MIGRATIONS.length) throw new Error(`database schema version ${from} is newer than this fumidai (${PG_MIGRATIONS.length}); upgrade fumidai`);
    for (let i = from; i < PG_MIGRATIONS.length; i++) {
      await client.query(PG_MIGRATIONS[i]!.replaceAll('%s', s));
      await client.query(`INSERT INTO ${s}.schema_migrations (version) VALUES ($1)`, [i + 1]);
    }
    await client.query('COMMIT');
    return { from, to: PG_MIGRATIONS.length };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
