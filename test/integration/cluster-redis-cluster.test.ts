import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, requireRedisPostgres } from '../conformance/services.ts';
import { startRedisCluster } from '../conformance/redis-cluster-support.ts';
import type { FumidaiProcess } from '../support/fumidai-process.ts';
import { requireTools } from '../support/requirements.ts';
import { PolicyConn, startNode, transaction } from './cluster-support.ts';

// Two `fumidai serve` nodes on a Redis Cluster of three masters (state.redis.cluster)
// and one PostgreSQL: the limit, suspensions and `top` work across nodes and slots.

const services = await requireRedisPostgres('cluster on Redis Cluster');
const bins = await requireTools('cluster on Redis Cluster', { bin: ['redis-server', 'redis-cli'] }, 'apt-get install -y redis-server');
const skip = services.skip || bins.skip;

describe('fumidai nodes on a Redis Cluster', { skip, timeout: 120_000 }, () => {
  let cluster: Awaited<ReturnType<typeof startRedisCluster>>;
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const nodes: (FumidaiProcess & { metricsUrl: string })[] = [];

  before(async () => {
    cluster = await startRedisCluster();
    db = await createTestDatabase();
    const extra = { limits: { windows: [{ name: 'hour', seconds: '1h', messages: 10, recipients: 1000 }] }, detection: { sustainedBreach: { enabled: false } } };
    const state = { redis: { cluster: true } };
    nodes.push(
      ...(await Promise.all([0, 1].map(() => startNode({ redisUrl: `redis://127.0.0.1:${cluster.ports[1]}`, pgUrl: db.url, prefix: 'fumidai', extra, state })))),
    );
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.cleanup()));
    cluster?.stop();
    await db?.drop();
  });

  it('a limit of 10 admits exactly 10 across two nodes; suspension and top work across slots', async () => {
    const conns = await Promise.all(nodes.flatMap((n) => [0, 1, 2].map(() => PolicyConn.open(n.policyPort))));
    const results = (await Promise.all(conns.map(async (c) => [await transaction(c, 'spread'), await transaction(c, 'spread'), await transaction(c, 'spread')]))).flat();
    assert.equal(results.filter((r) => r.eom === 'DUNNO').length, 10);
    // Senders in many slots, then top through the other node.
    for (let i = 0; i < 20; i++) await transaction(conns[i % conns.length]!, `user${i}`, `126.0.${i}.1`);
    const top = await nodes[1]!.admin('GET', '/api/v1/top?by=messages&window=1h&limit=3');
    assert.equal(top.status, 200, JSON.stringify(top.body));
    assert.deepEqual((top.body.entries as { sender: string; value: number }[])[0], { sender: 'spread', value: 10 });
    const s = await nodes[0]!.admin('POST', '/api/v1/senders/user7/suspend', { reason: 'test', by: 'ops' });
    assert.equal(s.status, 200);
    assert.match((await transaction(conns[5]!, 'user7')).rcpt, /^550 /);
    conns.forEach((c) => c.close());
  });
});
