import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createTestDatabase, deleteKeys, REDIS_URL, requireRedisPostgres, uniqueName } from '../conformance/services.ts';
import type { FumidaiProcess } from '../support/fumidai-process.ts';
import { CuttableProxy, getJson, metricValue, PolicyConn, startNode, transaction, until } from './cluster-support.ts';

// Redis or PostgreSQL going away in the middle of traffic (docs/distributed.md,
// "Failures"): answers keep coming within the deadline with policy.storeFailureAction,
// health says what is down, nothing recorded is lost, and everything recovers by itself.
// The nodes reach both services through TCP proxies that the test cuts and restores.

const req = await requireRedisPostgres('store failure: Redis/PostgreSQL outages');
const COMMAND_TIMEOUT = 200;
/** Policy answer deadline asserted below: a Redis timeout plus scheduling slack on a 2-core machine. */
const DEADLINE_MS = 1000;

describe('store outages under traffic', { ...req, timeout: 150_000 }, () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const prefix = uniqueName('fail');
  let redis: Redis;
  let redisProxy: CuttableProxy;
  let pgProxy: CuttableProxy;
  let closed: FumidaiProcess & { metricsUrl: string }; // fail closed (defer)
  let open: FumidaiProcess & { metricsUrl: string }; // fail open (accept)
  let connClosed: PolicyConn;
  let connOpen: PolicyConn;
  const proxied = () => {
    const u = new URL(db.url);
    u.port = String(pgProxy.port);
    return { redisUrl: `redis://127.0.0.1:${redisProxy.port}`, pgUrl: u.toString(), prefix };
  };
  const extra = (action: 'accept' | 'defer') => ({
    policy: { listeners: [{ listen: '127.0.0.1:0' }], storeFailureAction: action },
    detection: { sustainedBreach: { enabled: true, refusals: 3, window: '10m', autoReleaseAfter: '1d' } },
  });
  // The fail-closed node caches user settings per sender (preloadUsers 0); the fail-open
  // node holds the whole (small) users table (the default), so it needs no database to judge.
  const stateFor = (action: 'accept' | 'defer') => ({
    redis: { commandTimeoutMs: COMMAND_TIMEOUT },
    postgres: { queryTimeoutMs: 500, ...(action === 'defer' ? { preloadUsers: 0 } : {}) },
    resyncInterval: 3600,
  });

  before(async () => {
    db = await createTestDatabase();
    redis = new Redis(REDIS_URL);
    redisProxy = await CuttableProxy.start(6379);
    pgProxy = await CuttableProxy.start(5432);
    [closed, open] = await Promise.all([startNode({ ...proxied(), extra: extra('defer'), state: stateFor('defer') }), startNode({ ...proxied(), extra: extra('accept'), state: stateFor('accept') })]);
    connClosed = await PolicyConn.open(closed.policyPort);
    connOpen = await PolicyConn.open(open.policyPort);
  });
  after(async () => {
    connClosed?.close();
    connOpen?.close();
    await closed?.cleanup();
    await open?.cleanup();
    await redisProxy?.close();
    await pgProxy?.close();
    if (redis) {
      await deleteKeys(redis, prefix);
      redis.disconnect();
    }
    await db?.drop();
  });

  it('Redis blackholed: answers within the deadline, fail closed (451) or open (DUNNO) as configured; health and metrics say so; recovery', async () => {
    assert.equal((await transaction(connClosed, 'alice')).eom, 'DUNNO');
    assert.equal((await transaction(connOpen, 'alice')).eom, 'DUNNO');
    redisProxy.cut('blackhole');
    const closedAnswers = [];
    const openAnswers = [];
    for (let i = 0; i < 8; i++) {
      closedAnswers.push(await transaction(connClosed, 'alice'));
      openAnswers.push(await transaction(connOpen, 'alice'));
    }
    for (const r of closedAnswers) {
      assert.match(r.rcpt, /^451 4\.3\.0 /);
      assert.ok(r.ms < DEADLINE_MS, `answered in ${r.ms} ms`);
    }
    for (const r of openAnswers) {
      assert.equal(r.eom, 'DUNNO');
      assert.ok(r.ms < 2 * DEADLINE_MS, `RCPT + END-OF-MESSAGE answered in ${r.ms} ms`);
    }
    // After three timeouts in a row the node stops waiting: later answers come at once
    // (two of the last three, so that one scheduling hiccup on a busy machine does not fail the test).
    assert.ok(closedAnswers.slice(-3).filter((r) => r.ms < COMMAND_TIMEOUT).length >= 2, JSON.stringify(closedAnswers.map((r) => Math.round(r.ms))));
    const h = await getJson(`${closed.metricsUrl}/health`);
    assert.equal(h.status, 503);
    assert.equal((h.body.redis as { up: boolean }).up, false);
    assert.ok((await metricValue(closed.metricsUrl, 'fumidai_store_errors_total', '{store="redis"}')) >= 8);
    assert.match(closed.output(), /redis: unavailable/);

    redisProxy.restore();
    const back = await until('recovery after Redis returns', async () => (await transaction(connClosed, 'alice')).eom === 'DUNNO', 10_000);
    assert.ok(back);
    await until('health ok again', async () => (await getJson(`${closed.metricsUrl}/health`)).status === 200, 5000);
  });

  it('an operator suspension while Redis is down is recorded at once and enforced when Redis is back', async () => {
    assert.equal((await transaction(connOpen, 'gina')).eom, 'DUNNO');
    redisProxy.cut('refuse');
    await new Promise((r) => setTimeout(r, 100));
    const s = await closed.admin('POST', `/api/v1/senders/gina/suspend`, { reason: 'phished', by: 'ops' });
    assert.equal(s.status, 200, JSON.stringify(s.body));
    const audit = await closed.admin('GET', `/api/v1/audit?sender=gina`);
    assert.deepEqual((audit.body.entries as { action: string }[]).map((e) => e.action), ['suspend']);
    redisProxy.restore();
    await until('the queued flag to reach Redis', async () => /^550 /.test((await transaction(connOpen, 'gina')).rcpt), 10_000);
    // And a release while Redis is down: without the queued change the old flag would stay.
    redisProxy.cut('refuse');
    await new Promise((r) => setTimeout(r, 100));
    const rel = await closed.admin('POST', `/api/v1/senders/gina/release`, { by: 'ops' });
    assert.equal(rel.status, 200, JSON.stringify(rel.body));
    redisProxy.restore();
    await until('the queued release to reach Redis', async () => (await transaction(connOpen, 'gina')).eom === 'DUNNO', 10_000);
  });

  it('Redis refusing connections: immediate answers, then recovery', async () => {
    redisProxy.cut('refuse');
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 5; i++) {
      const r = await transaction(connClosed, 'bob');
      assert.match(r.rcpt, /^451 4\.3\.0 /);
      // No timeout is involved (commands fail at once while disconnected); the bound is the deadline.
      assert.ok(r.ms < DEADLINE_MS, `answered in ${r.ms} ms`);
    }
    redisProxy.restore();
    await until('recovery', async () => (await transaction(connClosed, 'bob')).eom === 'DUNNO', 10_000);
  });

  it('a suspension flag lost by Redis (restart without persistence) comes back from PostgreSQL on reconnect', async () => {
    const s = await closed.admin('POST', `/api/v1/senders/carol/suspend`, { reason: 'test', by: 'ops' });
    assert.equal(s.status, 200);
    assert.match((await transaction(connOpen, 'carol')).rcpt, /^550 /);
    // Simulate a Redis restart that lost the data: delete the flag, drop the connections.
    await redis.del(`${prefix}:{s:carol}:sus`);
    redisProxy.cut('refuse');
    await new Promise((r) => setTimeout(r, 200));
    redisProxy.restore();
    await until('the flag to be restored by the resync after reconnect', async () => /^550 /.test((await transaction(connOpen, 'carol')).rcpt), 10_000);
  });

  it('PostgreSQL down: cached users keep sending, suspensions and audit entries go to the spool (kill -9 safe) and are replayed; releases are refused', async () => {
    // dave gets a per-user limit of 1/hour; both nodes have his settings cached.
    const put = await closed.admin('PUT', `/api/v1/users/dave`, { limits: [{ messages: 1, recipients: 10 }, { messages: 200, recipients: 500 }, { messages: 1000, recipients: 2000 }] });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.equal((await transaction(connClosed, 'erin')).eom, 'DUNNO');
    assert.equal((await transaction(connClosed, 'dave')).eom, 'DUNNO');
    // The fail-open node sees them too (dave is over his limit already: refused, but cached).
    assert.equal((await transaction(connOpen, 'frank')).eom, 'DUNNO');
    assert.match((await transaction(connOpen, 'dave')).rcpt, /^450 /);

    pgProxy.cut('refuse');
    // Traffic of known users goes on (settings from the cache, counters in Redis).
    assert.equal((await transaction(connClosed, 'erin')).eom, 'DUNNO');
    // dave keeps pushing: the third refusal suspends him automatically, while PostgreSQL is down.
    const refusals = [];
    for (let i = 0; i < 3; i++) refusals.push(await transaction(connClosed, 'dave'));
    assert.match(refusals[2]!.rcpt, /^550 5\.7\.1 /, JSON.stringify(refusals));
    // Enforced at once on the other node (the flag lives in Redis).
    assert.match((await transaction(connOpen, 'dave')).rcpt, /^550 /);
    // An operator suspension also works; a release is refused while the spool is not empty.
    // (The fail-open node holds all user settings, so it reads the flag for any ID; a node
    // caching per sender would answer an ID it has not cached with its failure action.)
    const op = await closed.admin('POST', `/api/v1/senders/frank/suspend`, { reason: 'phished', by: 'ops' });
    assert.equal(op.status, 200, JSON.stringify(op.body));
    assert.match((await transaction(connOpen, 'frank')).rcpt, /^550 /);
    const rel = await closed.admin('POST', `/api/v1/senders/frank/release`, { by: 'ops' });
    assert.notEqual(rel.status, 200);
    const h = await getJson(`${closed.metricsUrl}/health`);
    assert.equal(h.status, 503);
    const spooled = (h.body.postgres as { up: boolean; spooled: number }).spooled;
    assert.ok(spooled >= 6, `spooled ${spooled}`); // 2 suspensions + their audit entries and notices (+ the limit notices)

    // The node dies hard before PostgreSQL returns; its spool is on disk.
    await closed.kill('SIGKILL');
    pgProxy.restore();
    const again = await startNode({ ...proxied(), extra: extra('defer'), state: stateFor('defer'), dir: closed.dir });
    closed = again;
    connClosed.close();
    connClosed = await PolicyConn.open(again.policyPort);
    const audit = await until('the spool to be replayed', async () => {
      const a = await again.admin('GET', `/api/v1/audit?limit=100`);
      const entries = (a.body.entries ?? []) as { sender: string; action: string; actor: string }[];
      return entries.filter((e) => e.action === 'suspend').length >= 3 ? entries : null;
    }, 15_000);
    assert.ok(audit.some((e) => e.sender === 'dave' && e.actor === 'auto'));
    assert.ok(audit.some((e) => e.sender === 'frank' && e.actor === 'ops'));
    const dave = await again.admin('GET', `/api/v1/senders/dave`);
    const sus = dave.body.suspension as { rule: string; autoReleaseAt: number | null } | null;
    assert.equal(sus?.rule, 'sustained-breach');
    // Fail safe: decided while the release history was unknown, so no automatic release.
    assert.equal(sus?.autoReleaseAt, null);
    assert.equal((await getJson(`${again.metricsUrl}/health`)).body.ok, true);
    // Releases work again and take effect everywhere.
    const rel2 = await again.admin('POST', `/api/v1/senders/frank/release`, { by: 'ops' });
    assert.equal(rel2.status, 200, JSON.stringify(rel2.body));
    assert.equal((await transaction(connOpen, 'frank')).eom, 'DUNNO');
  });

  it('PostgreSQL down: an ID a per-sender cache does not hold gets the failure action at once; a node holding all settings judges it normally', async () => {
    pgProxy.cut('refuse');
    await until('postgres marked down', async () => (await getJson(`${open.metricsUrl}/health`)).status === 503, 5000);
    const r = await transaction(connClosed, 'never-seen-before');
    assert.match(r.rcpt, /^451 4\.3\.0 /);
    assert.ok(r.ms < DEADLINE_MS, `${r.ms} ms`);
    const failOpens = await metricValue(open.metricsUrl, 'fumidai_decisions_total', '{stage="rcpt",action="accept-store-unavailable"}');
    const o = await transaction(connOpen, 'never-seen-either');
    assert.equal(o.eom, 'DUNNO');
    assert.equal(await metricValue(open.metricsUrl, 'fumidai_decisions_total', '{stage="rcpt",action="accept-store-unavailable"}'), failOpens, 'judged, not failed open');
    pgProxy.restore();
    await until('recovery', async () => (await transaction(connClosed, 'never-seen-before')).eom === 'DUNNO', 10_000);
  });
});
