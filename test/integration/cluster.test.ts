import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createTestDatabase, deleteKeys, REDIS_URL, requireRedisPostgres, uniqueName } from '../conformance/services.ts';
import type { FumidaiProcess } from '../support/fumidai-process.ts';
import { metricValue, PolicyConn, startNode, transaction, until } from './cluster-support.ts';

// Three `fumidai serve` processes on one Redis + one PostgreSQL: a limit holds across
// all of them, a suspension through one node is enforced by the others at once, and a
// policy request costs at most one Redis round trip.

const req = await requireRedisPostgres('cluster: three nodes on Redis + PostgreSQL');
const LIMIT = 25;

describe('three fumidai nodes share one state', { ...req, timeout: 120_000 }, () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const prefix = uniqueName('cluster');
  const nodes: (FumidaiProcess & { metricsUrl: string })[] = [];
  let redis: Redis;

  before(async () => {
    db = await createTestDatabase();
    redis = new Redis(REDIS_URL);
    const extra = {
      limits: { windows: [{ name: 'hour', seconds: '1h', messages: LIMIT, recipients: 1000 }] },
      // Refusals are what this test provokes; the breach rule would suspend the ID.
      detection: { sustainedBreach: { enabled: false } },
    };
    // Started at the same moment: each runs the migrations (advisory lock: applied once).
    nodes.push(...(await Promise.all([0, 1, 2].map(() => startNode({ redisUrl: REDIS_URL, pgUrl: db.url, prefix, extra })))));
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.cleanup()));
    if (redis) {
      await deleteKeys(redis, prefix);
      redis.disconnect();
    }
    await db?.drop();
  });

  it('migrations ran once although three nodes started together; `fumidai migrate` finds nothing to do', async () => {
    const out = nodes.map((n) => n.output()).join('\n');
    assert.equal((out.match(/migrated from version 0 to 1/g) ?? []).length, 1, out);
    const m = await nodes[0]!.cli(['migrate']);
    assert.equal(m.code, 0, m.stderr);
    assert.match(m.stdout, /is up to date \(version 1\)/);
  });

  it(`a limit of ${LIMIT} admits exactly ${LIMIT} messages of one ID sent concurrently through three nodes`, async () => {
    const user = 'spread@example.jp';
    // Four connections per node, like four smtpd processes each, 15 transactions per node.
    const conns = await Promise.all(nodes.flatMap((n) => [0, 1, 2, 3].map(() => PolicyConn.open(n.policyPort))));
    const before = await Promise.all(nodes.map((n) => metricValue(n.metricsUrl, 'fumidai_redis_round_trips_total')));
    const results = (await Promise.all(conns.map(async (c) => {
      const rs = [];
      for (let i = 0; i < 4; i++) rs.push(await transaction(c, user));
      return rs;
    }))).flat();
    const afterRt = await Promise.all(nodes.map((n) => metricValue(n.metricsUrl, 'fumidai_redis_round_trips_total')));
    conns.forEach((c) => c.close());
    const admitted = results.filter((r) => r.eom === 'DUNNO').length;
    const refused = results.filter((r) => r.eom !== 'DUNNO');
    assert.equal(results.length, 48);
    assert.equal(admitted, LIMIT, JSON.stringify(results));
    for (const r of refused) assert.match(r.eom ?? r.rcpt, /^450 4\.7\.1 /);
    // Every node sees the same count.
    for (const n of nodes) {
      const look = await n.admin('GET', `/api/v1/senders/${encodeURIComponent(user)}`);
      assert.equal((look.body.windows as { messages: number }[])[0]!.messages, LIMIT);
    }
    // Requests = RCPTs + END-OF-MESSAGEs; Redis round trips for them across the nodes.
    const requests = results.reduce((a, r) => a + (r.eom === null ? 1 : 2), 0);
    const trips = afterRt.reduce((a, v, i) => a + v - before[i]!, 0);
    assert.ok(trips <= requests, `${trips} Redis round trips for ${requests} policy requests`);
  });

  it('a suspension made through one node is enforced by the others at once, and so is its release', async () => {
    const user = 'phished@example.jp';
    const c = await Promise.all(nodes.map((n) => PolicyConn.open(n.policyPort)));
    for (const x of c) assert.equal((await transaction(x, user)).eom, 'DUNNO');
    const s = await nodes[0]!.admin('POST', `/api/v1/senders/${encodeURIComponent(user)}/suspend`, { reason: 'phished, reported by the user', by: 'ops' });
    assert.equal(s.status, 200, JSON.stringify(s.body));
    // No wait: the next request on the other nodes is refused.
    assert.match((await transaction(c[1]!, user)).rcpt, /^550 5\.7\.1 /);
    assert.match((await transaction(c[2]!, user)).rcpt, /^550 5\.7\.1 /);
    const r = await nodes[2]!.admin('POST', `/api/v1/senders/${encodeURIComponent(user)}/release`, { by: 'ops' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((await transaction(c[0]!, user)).eom, 'DUNNO');
    // The records are shared too: node 1 sees node 0's suspension in the history and audit log.
    const look = await nodes[1]!.admin('GET', `/api/v1/senders/${encodeURIComponent(user)}`);
    assert.equal((look.body.history as unknown[]).length, 1);
    const audit = await nodes[1]!.admin('GET', `/api/v1/audit?sender=${encodeURIComponent(user)}`);
    assert.deepEqual((audit.body.entries as { action: string }[]).map((e) => e.action), ['release', 'suspend']);
    c.forEach((x) => x.close());
  });

  it('per-user settings changed through one node apply on the others without waiting for the cache TTL', async () => {
    const user = 'newsletter@example.jp';
    const c = await PolicyConn.open(nodes[2]!.policyPort);
    assert.equal((await transaction(c, user)).eom, 'DUNNO'); // node 2 caches "no settings"
    const put = await nodes[0]!.admin('PUT', `/api/v1/users/${encodeURIComponent(user)}`, { limits: [{ messages: 1, recipients: 10 }] });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    // LISTEN/NOTIFY drops node 2's cached entry (milliseconds; the TTL is 60 s).
    await until('node 2 to apply the new limit', async () => /^450 /.test((await transaction(c, user)).rcpt), 3000, 50);
    c.close();
  });

  it('/health and /metrics report the stores and the decisions', async () => {
    const h = await fetch(`${nodes[1]!.metricsUrl}/health`);
    assert.equal(h.status, 200);
    const body = (await h.json()) as { ok: boolean; redis: { up: boolean }; postgres: { up: boolean; listening: boolean } };
    assert.equal(body.ok, true);
    assert.equal(body.redis.up, true);
    assert.equal(body.postgres.listening, true);
    const text = await (await fetch(`${nodes[1]!.metricsUrl}/metrics`)).text();
    assert.match(text, /^fumidai_decisions_total\{stage="rcpt",action="accept"\} \d+$/m);
    assert.match(text, /^fumidai_decision_duration_seconds_bucket\{le="\+Inf"\} \d+$/m);
    assert.match(text, /^fumidai_store_up\{store="redis"\} 1$/m);
  });
});
