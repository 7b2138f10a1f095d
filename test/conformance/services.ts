import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { requireTools, type SkipOption } from '../support/requirements.ts';

// Redis and PostgreSQL for tests: each test file gets its OWN database (created with a
// unique name, dropped after) and its OWN key prefix (keys deleted after), so test files
// can run in parallel and never touch anyone's data.

export const REDIS_URL = process.env['FUMIDAI_TEST_REDIS'] ?? 'redis://127.0.0.1:6379';
export const PG_ADMIN_URL = process.env['FUMIDAI_TEST_PG'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export function requireRedisPostgres(suite: string): Promise<SkipOption> {
  return requireTools(
    suite,
    {
      tcp: [
        { host: '127.0.0.1', port: 6379, name: 'Redis' },
        { host: '127.0.0.1', port: 5432, name: 'PostgreSQL' },
      ],
    },
    'apt-get install -y redis-server postgresql (.ci/run starts both)',
  );
}

export function uniqueName(kind: string): string {
  return `fumidai_${kind}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

/** Creates a uniquely named database; returns its URL and a function that drops it. */
export async function createTestDatabase(): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  const name = uniqueName('test');
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** Deletes every key under `prefix:` (SCAN, not KEYS). */
export async function deleteKeys(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) n += await redis.del(...keys);
  } while (cursor !== '0');
  return n;
}

export function testRedis(): Redis {
  return new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
}
