// Delivery through separate IP pools, end to end: a real Postfix (the harness) with
// fumidai's policy server AND milter on one engine, configured with the example files
// in examples/postfix/ as they ship. Mail the verdict routes to pool "suspect" must
// arrive at the suspect sink (standing in for the relay that owns the suspect IPs),
// without the internal header; everything else at the clean sink (the normal relay).
// A client cannot pick its pool by writing the header itself.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startMilterServer, type MilterServerHandle } from '../../src/doors/milter/server.ts';
import { senderToken } from '../../src/doors/milter/translate.ts';
import { startPolicyServer, type PolicyServerHandle } from '../../src/doors/policy/server.ts';
import { senderId } from '../../src/engine/types.ts';
import type { SinkMessage, SmtpSink } from '../support/smtp-sink.ts';
import { requirePostfix, swaks, type PostfixInstance, type SwaksOptions } from './postfix/harness.ts';
import { startPoolRoutes, type PoolRoutes } from './postfix/pool-routes.ts';
import { testEngine, type TestEngine } from '../miltertest/test-engine.ts';

const SUITE = 'pools through Postfix (examples/postfix)';
const SECRET = 'pools test secret, not for production';
const req = await requirePostfix(SUITE);

describe(SUITE, { ...req, timeout: 120_000 }, () => {
  let te: TestEngine;
  let policy: PolicyServerHandle;
  let milter: MilterServerHandle;
  let clean: SmtpSink;
  let suspect: SmtpSink;
  let pf: PostfixInstance;
  let mapDir: string;
  let routes: PoolRoutes;
  const warnings: string[] = [];
  let n = 0;

  before(async () => {
    te = testEngine({
      policy: { listeners: [{ listen: '127.0.0.1:0' }] },
      milter: { listeners: [{ listen: '127.0.0.1:0' }], senderTokenHeader: 'X-Fumidai-Sender', senderTokenSecret: SECRET },
      limits: { windows: [{ name: 'minute', seconds: 60, messages: 4, recipients: 100 }] },
    });
    const log = { warn: (m: string) => warnings.push(m) };
    policy = await startPolicyServer(te.engine, te.config, log);
    milter = await startMilterServer(te.engine, te.config, log);
    routes = await startPoolRoutes(`inet:${policy.addresses[0]}`, `inet:${milter.addresses[0]}`);
    ({ pf, clean, suspect, mapDir } = routes);
  });
  after(async () => {
    await routes?.close();
    await milter?.close();
    await policy?.close();
    await te?.close();
  });

  async function send(login: string, headers: Record<string, string>, extra: Partial<SwaksOptions> = {}): Promise<{ id: string; accepted: boolean; text: string }> {
    const id = `t${++n}`;
    const r = await swaks({ port: pf.port, from: login, to: 'bob@example.com', login, addr: '203.0.113.9', headers: { 'X-Test-Id': id, ...headers }, ...extra });
    return { id, accepted: r.accepted, text: r.final === null ? '' : `${r.final.code} ${r.final.text}` };
  }

  const byId = (id: string) => (m: SinkMessage) => m.header('X-Test-Id') === id;

  test('the example configuration is what Postfix runs with', async () => {
    assert.equal(await pf.postconf('milter_header_checks'), `regexp:${mapDir}/fumidai_milter_header_checks`);
    assert.equal(await pf.postconf('smtp_header_checks'), `regexp:${mapDir}/fumidai_smtp_header_checks`);
    assert.equal(await pf.postconf('milter_default_action'), 'tempfail');
  });

  test('a verdict naming pool "suspect" leaves through the suspect transport, without the internal header', async () => {
    const r = await send('dave@example.jp', { 'X-Test-Verdict': 'pool=suspect' });
    assert.ok(r.accepted, r.text);
    const m = await suspect.waitUntil(byId(r.id));
    assert.equal(m.header('X-Fumidai-Pool'), undefined, 'removed by smtp_header_checks');
    assert.deepEqual(m.rcptTo, ['bob@example.com']);
    assert.equal(m.header('X-Fumidai-Sender'), senderToken(SECRET, senderId('dave@example.jp')), 'the sender token reaches downstream');
    assert.equal(clean.messages().some(byId(r.id)), false);
    // Postfix 3.7 logs the milter_header_checks match with the FILTER target.
    assert.match(pf.log(), /milter-header-filter: header X-Fumidai-Pool: suspect .*: smtp-suspect:\[127\.0\.0\.1\]:\d+/);
  });

  test('an ordinary message takes the normal route (clean)', async () => {
    const r = await send('erin@example.jp', {});
    assert.ok(r.accepted, r.text);
    const m = await clean.waitUntil(byId(r.id));
    assert.equal(m.header('X-Fumidai-Pool'), undefined);
    assert.equal(m.header('X-Fumidai-Sender'), senderToken(SECRET, senderId('erin@example.jp')));
    assert.equal(suspect.messages().some(byId(r.id)), false);
  });

  test('a verdict naming pool "clean": header added, normal route, header removed', async () => {
    const r = await send('erin@example.jp', { 'X-Test-Verdict': 'pool=clean' });
    assert.ok(r.accepted, r.text);
    const m = await clean.waitUntil(byId(r.id));
    assert.equal(m.header('X-Fumidai-Pool'), undefined);
  });

  test('a client writing X-Fumidai-Pool: suspect itself does not get the suspect route; its copy is stripped', async () => {
    const r = await send('frank@example.jp', { 'X-Fumidai-Pool': 'suspect', 'X-Fumidai-Sender': 'forged' });
    assert.ok(r.accepted, r.text);
    const m = await clean.waitUntil(byId(r.id));
    assert.equal(m.header('X-Fumidai-Pool'), undefined);
    assert.equal(m.header('X-Fumidai-Sender'), senderToken(SECRET, senderId('frank@example.jp')), 'only our token, not the forged one');
    assert.equal((m.text.match(/^X-Fumidai-Sender:/gim) ?? []).length, 1);
  });

  test('a client writing X-Fumidai-Pool: clean cannot escape a suspect verdict', async () => {
    const r = await send('grace@example.jp', { 'X-Fumidai-Pool': 'clean', 'X-Test-Verdict': 'pool=suspect' });
    assert.ok(r.accepted, r.text);
    const m = await suspect.waitUntil(byId(r.id));
    assert.equal(m.header('X-Fumidai-Pool'), undefined);
    assert.equal(clean.messages().some(byId(r.id)), false);
  });

  test('hold: the message waits in Postfix\'s hold queue', async () => {
    const r = await send('heidi@example.jp', { 'X-Test-Verdict': 'hold' });
    assert.ok(r.accepted, r.text);
    // Postfix 3.7 logs its own words, not the quarantine reason the milter gave.
    await pf.waitForLog(/milter-hold: END-OF-MESSAGE .*milter triggers HOLD action; from=<heidi@example\.jp>/);
    const held = (await pf.queue()).filter((q) => q.queue_name === 'hold');
    assert.equal(held.length, 1);
    assert.equal(held[0]!.sender, 'heidi@example.jp');
  });

  test('a suspended sender: the policy server refuses at RCPT already', async () => {
    await te.engine.suspendByOperator(senderId('mallory@example.jp'), 'test', 'pools test');
    const r = await send('mallory@example.jp', {});
    assert.equal(r.accepted, false);
    assert.match(r.text, /^550 5\.7\.1 .*suspended/);
  });

  test('policy server + milter on one engine count each message once', async () => {
    const login = 'ivan@example.jp';
    for (let i = 0; i < 4; i++) {
      const r = await send(login, {});
      assert.ok(r.accepted, `message ${i + 1} of 4 (limit 4): ${r.text}`);
    }
    const peek = await te.counters.peek(senderId(login), Date.now());
    assert.equal(peek.windows[0]!.messages, 4);
    const fifth = await send(login, {});
    assert.equal(fifth.accepted, false);
    assert.match(fifth.text, /^450 4\.7\.1 /);
  });

  test('the milter saw no protocol trouble', () => {
    assert.deepEqual(warnings, []);
    assert.doesNotMatch(pf.log(), /milter.*(?:error|unexpected|warning)/i);
  });
});
