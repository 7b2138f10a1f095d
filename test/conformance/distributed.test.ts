import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { counterStoreSuite } from './counter-store.suite.ts';
import { recordStoreSuite } from './record-store.suite.ts';
import { createTestDatabase, deleteKeys, requireRedisPostgres, testRedis, uniqueName } from './services.ts';
import { PostgresRecordStore } from '../../src/store/postgres/postgres-record-store.ts';
import { RedisCounterStore } from '../../src/store/redis/redis-counter-store.ts';

// The same conformance suites against the distributed backend: Redis counters (own key
// prefix, deleted after) and PostgreSQL records (own database, dropped after).

const req = await requireRedisPostgres('conformance: Redis + PostgreSQL');
const skip = req.skip;

counterStoreSuite(
  'Redis',
  async (layout) => {
    const redis = testRedis();
    const prefix = uniqueName('conf');
    // A low HyperLogLog threshold so the estimate path is exercised by a small test.
    const store = new RedisCounterStore(redis, { layout, prefix, hllThreshold: 16 });
    return {
      store,
      async cleanup() {
        await deleteKeys(redis, prefix);
        redis.disconnect();
      },
    };
  },
  { skip },
);

recordStoreSuite(
  'PostgreSQL',
  async () => {
    const db = await createTestDatabase();
    const dir = mkdtempSync(join(tmpdir(), 'fumidai-spool-'));
    const store = new PostgresRecordStore({ url: db.url, schema: 'fumidai', spoolDir: dir, flushMs: 60_000 });
    await store.migrate();
    await store.listen();
    return {
      store,
      async cleanup() {
        await store.close();
        await db.drop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  { skip },
);
