// Self-test of the real-Postfix harness (test/integration/postfix/harness.ts), with a
// stand-in policy server. It pins down the Postfix behaviour fumidai's policy door
// relies on: which requests arrive when, with which attributes, and what the SMTP
// client sees of a policy reply (including UTF-8 text).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, beforeEach, describe, test } from 'node:test';
import { startPolicyStub, type PolicyRequest, type PolicyStub } from '../support/policy-stub.ts';
import { pidsOf, requirePostfix, startPostfix, swaks, type PostfixInstance } from './postfix/harness.ts';

const SUITE = 'postfix harness self-test';
const req = await requirePostfix(SUITE);

const JA_REPLY = '550 5.7.1 送信停止 / Sending suspended';
const JA_BYTES = Buffer.from('送信停止', 'utf8'); // e9 80 81 e4 bf a1 e5 81 9c e6 ad a2

function byState(requests: readonly PolicyRequest[], state: string): PolicyRequest[] {
  return requests.filter((r) => r['protocol_state'] === state);
}

describe(SUITE, { ...req, timeout: 60_000 }, () => {
  let policy: PolicyStub;
  let pf: PostfixInstance;
  let decide: (r: PolicyRequest) => string = () => 'DUNNO';

  before(async () => {
    policy = await startPolicyStub({ decide: (r) => decide(r) });
    pf = await startPostfix({ policy: policy.endpoint });
  });
  after(async () => {
    await pf?.stop();
    await policy?.close();
  });
  beforeEach(() => {
    decide = () => 'DUNNO';
    policy.reset();
  });

  test('policy is consulted at RCPT and END-OF-MESSAGE with the XCLIENT login and address; mail reaches the sink', async () => {
    const r = await swaks({
      port: pf.port,
      from: 'alice@example.jp',
      to: 'bob@example.com',
      login: 'alice@example.jp',
      addr: '203.0.113.9',
      headers: { 'X-Test-Id': 'basic' },
    });
    assert.equal(r.exitCode, 0, r.transcript);
    assert.ok(r.accepted);
    assert.equal(r.lastRcpt?.code, 250);
    const queueId = /queued as ([0-9A-F]+)/.exec(r.endOfData?.text ?? '')?.[1];
    assert.ok(queueId !== undefined, r.transcript);

    const msg = await pf.sink!.waitUntil((m) => m.header('X-Test-Id') === 'basic');
    assert.equal(msg.mailFrom, 'alice@example.jp');
    assert.deepEqual(msg.rcptTo, ['bob@example.com']);

    const requests = policy.requests();
    assert.deepEqual(
      requests.map((q) => q['protocol_state']),
      ['RCPT', 'END-OF-MESSAGE'],
    );
    const [rcpt, eom] = requests as [PolicyRequest, PolicyRequest];
    for (const q of [rcpt, eom]) {
      assert.equal(q['request'], 'smtpd_access_policy');
      assert.equal(q['sasl_username'], 'alice@example.jp');
      assert.equal(q['sasl_method'], 'XCLIENT');
      assert.equal(q['client_address'], '203.0.113.9');
      assert.equal(q['sender'], 'alice@example.jp');
    }
    assert.equal(rcpt['recipient'], 'bob@example.com');
    assert.equal(rcpt['recipient_count'], '0');
    assert.equal(rcpt['queue_id'], '', 'no queue file before the first accepted RCPT');
    assert.equal(rcpt['size'], '0');
    assert.equal(eom['instance'], rcpt['instance'], 'instance joins the requests of one message');
    assert.equal(eom['recipient_count'], '1');
    assert.equal(eom['recipient'], 'bob@example.com');
    assert.equal(eom['queue_id'], queueId);
    assert.ok(Number(eom['size']) > 100, `END-OF-MESSAGE carries the actual size, got ${eom['size']}`);
  });

  test('several recipients: one RCPT request each; END-OF-MESSAGE has the count and no recipient', async () => {
    const r = await swaks({
      port: pf.port,
      from: 'carol@example.jp',
      to: ['x1@example.com', 'x2@example.net'],
      login: 'carol@example.jp',
      addr: '198.51.100.7',
      headers: { 'X-Test-Id': 'multi' },
    });
    assert.equal(r.exitCode, 0, r.transcript);
    assert.deepEqual(r.rcpt.map((x) => x.code), [250, 250]);
    const rcpts = byState(policy.requests(), 'RCPT');
    assert.deepEqual(rcpts.map((q) => q['recipient']), ['x1@example.com', 'x2@example.net']);
    assert.equal(rcpts[1]?.['queue_id'] !== '', true, 'queue id is set after the first accepted RCPT');
    const [eom] = byState(policy.requests(), 'END-OF-MESSAGE');
    assert.equal(eom?.['recipient_count'], '2');
    assert.equal(eom?.['recipient'], '');
    const msg = await pf.sink!.waitUntil((m) => m.header('X-Test-Id') === 'multi');
    assert.deepEqual([...msg.rcptTo].sort(), ['x1@example.com', 'x2@example.net']);
  });

  test('XCLIENT ADDR=IPV6:... reaches the policy server as a plain IPv6 address', async () => {
    const r = await swaks({
      port: pf.port,
      from: 'dave@example.jp',
      to: 'bob@example.com',
      login: 'dave@example.jp',
      addr: 'IPV6:2001:db8::9',
      headers: { 'X-Test-Id': 'ipv6' },
    });
    assert.equal(r.exitCode, 0, r.transcript);
    assert.equal(policy.requests()[0]?.['client_address'], '2001:db8::9');
    await pf.sink!.waitUntil((m) => m.header('X-Test-Id') === 'ipv6');
  });

  test('without XCLIENT LOGIN the submission-like relay rule refuses before the policy service is asked', async () => {
    const r = await swaks({ port: pf.port, from: 'eve@example.jp', to: 'bob@example.com', addr: '203.0.113.66' });
    assert.equal(r.exitCode, 24, r.transcript);
    assert.equal(r.lastRcpt?.code, 554);
    // "reject" in smtpd_relay_restrictions (not reject_unauth_destination, which says "Relay access denied")
    assert.equal(r.lastRcpt?.text, '5.7.1 <bob@example.com>: Recipient address rejected: Access denied');
    assert.equal(policy.requests().length, 0);
  });

  test('a 4xx policy reply at RCPT defers the recipient; nothing is queued or delivered', async () => {
    decide = (q) => (q['protocol_state'] === 'RCPT' ? '450 4.7.1 Too many messages, try later' : 'DUNNO');
    const r = await swaks({
      port: pf.port,
      from: 'frank@example.jp',
      to: 'bob@example.com',
      login: 'frank@example.jp',
      addr: '203.0.113.10',
      headers: { 'X-Test-Id': 'deferred' },
    });
    assert.equal(r.exitCode, 24, r.transcript);
    assert.equal(r.lastRcpt?.code, 450);
    assert.equal(r.lastRcpt?.enhanced, '4.7.1');
    // Postfix puts the recipient and "Recipient address rejected:" before the policy text.
    assert.equal(r.lastRcpt?.text, '4.7.1 <bob@example.com>: Recipient address rejected: Too many messages, try later');
    assert.equal(r.endOfData, null);
    assert.deepEqual(await pf.queue(), [], 'nothing queued, so nothing can be delivered later');
    assert.equal(pf.sink!.messages().some((m) => m.header('X-Test-Id') === 'deferred'), false);
  });

  test('a 5xx policy reply at END-OF-MESSAGE rejects the whole message', async () => {
    decide = (q) => (q['protocol_state'] === 'END-OF-MESSAGE' ? 'REJECT Message refused' : 'DUNNO');
    const r = await swaks({
      port: pf.port,
      from: 'gina@example.jp',
      to: 'bob@example.com',
      login: 'gina@example.jp',
      addr: '203.0.113.11',
      headers: { 'X-Test-Id': 'eom-reject' },
    });
    assert.equal(r.exitCode, 26, r.transcript);
    assert.equal(r.data?.code, 354);
    assert.equal(r.endOfData?.code, 554);
    assert.equal(r.endOfData?.text, '5.7.1 <END-OF-MESSAGE>: End-of-data rejected: Message refused');
    assert.equal(r.accepted, false);
    assert.deepEqual(await pf.queue(), []);
  });

  test('UTF-8 policy reply text reaches the client byte for byte (smtputf8_enable = yes)', async () => {
    decide = (q) => (q['protocol_state'] === 'RCPT' ? JA_REPLY : 'DUNNO');
    const r = await swaks({ port: pf.port, from: 'ha@example.jp', to: 'bob@example.com', login: 'ha@example.jp', addr: '203.0.113.12' });
    assert.equal(r.lastRcpt?.code, 550, r.transcript);
    assert.equal(r.lastRcpt?.text, '5.7.1 <bob@example.com>: Recipient address rejected: 送信停止 / Sending suspended');
    const line = r.stdout.subarray(r.stdout.indexOf('<** 550'));
    assert.ok(line.includes(JA_BYTES), 'the raw bytes in swaks output are the UTF-8 encoding');

    decide = (q) => (q['protocol_state'] === 'END-OF-MESSAGE' ? JA_REPLY : 'DUNNO');
    const e = await swaks({ port: pf.port, from: 'ha@example.jp', to: 'bob@example.com', login: 'ha@example.jp', addr: '203.0.113.12' });
    assert.equal(e.endOfData?.code, 550, e.transcript);
    assert.equal(e.endOfData?.text, '5.7.1 <END-OF-MESSAGE>: End-of-data rejected: 送信停止 / Sending suspended');
  });
});

describe(`${SUITE}: smtputf8_enable = no`, { ...req, timeout: 60_000 }, () => {
  let policy: PolicyStub;
  let pf: PostfixInstance;

  before(async () => {
    policy = await startPolicyStub({ decide: () => JA_REPLY });
    pf = await startPostfix({ policy: policy.endpoint, extraMain: { smtputf8_enable: 'no' } });
  });
  after(async () => {
    await pf?.stop();
    await policy?.close();
  });

  // Also the effective default when main.cf sets no compatibility_level (Debian's
  // "No configuration" install): `postconf -d` gives compatibility_level = 0, and
  // smtputf8_enable is "no" below level 1.
  test('non-ASCII bytes of a policy reply become spaces', async () => {
    const r = await swaks({ port: pf.port, from: 'ha@example.jp', to: 'bob@example.com', login: 'ha@example.jp', addr: '203.0.113.12' });
    assert.equal(r.lastRcpt?.code, 550, r.transcript);
    assert.equal(r.lastRcpt?.text, `5.7.1 <bob@example.com>: Recipient address rejected: ${' '.repeat(JA_BYTES.length)} / Sending suspended`);
  });
});

describe(`${SUITE}: cleanup`, { ...req, timeout: 30_000 }, () => {
  test('stop() ends every process of the instance and removes its folder', async () => {
    const pf = await startPostfix({});
    try {
      // A delivery makes smtpd, cleanup, qmgr and smtp run besides master.
      const r = await swaks({ port: pf.port, from: 'a@example.jp', to: 'b@example.com', login: 'a@example.jp', addr: '203.0.113.20' });
      assert.equal(r.exitCode, 0, r.transcript);
      await pf.sink!.waitFor(1);
      assert.ok(pidsOf(pf.configDir).length >= 3, `master and some daemons run: ${pidsOf(pf.configDir).length}`);
      assert.equal(await pf.postconf('myhostname'), `mta-${pf.port}.fumidai-test.invalid`);
    } finally {
      await pf.stop();
    }
    assert.deepEqual(pidsOf(pf.configDir), []);
    assert.equal(existsSync(pf.dir), false);
    await pf.stop(); // idempotent
  });
});
