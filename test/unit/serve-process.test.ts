import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { policyRequest, startFumidai } from '../support/fumidai-process.ts';

// The whole program as a process: durability across kill -9, the admin API's input
// validation, and the support CLI against a running server.

const rcpt = (user: string, instance: string) => ({ protocol_state: 'RCPT', sasl_username: user, client_address: '126.5.5.5', sender: `${user}@example.jp`, recipient: 'x@example.com', instance });
const eom = (user: string, instance: string) => ({ ...rcpt(user, instance), protocol_state: 'END-OF-MESSAGE', recipient_count: '1' });
const LIMITS = { limits: { windows: [{ name: 'hour', seconds: '1h', messages: 2, recipients: 10 }] } };

describe('fumidai serve as a process', () => {
  it('suspensions, audit entries and counters survive kill -9', async () => {
    const first = await startFumidai(LIMITS);
    after(() => first.cleanup());
    for (const i of ['a', 'b']) {
      assert.equal(await policyRequest(first.policyPort, rcpt('alice', i)), 'DUNNO');
      assert.equal(await policyRequest(first.policyPort, eom('alice', i)), 'DUNNO');
    }
    const s = await first.cli(['suspend', 'mallory', '--reason', 'phished, reported by user']);
    assert.equal(s.code, 0, s.stderr);
    // Let one counter save happen? No: counters are saved every 30 s and at shutdown; kill -9 now.
    await first.kill('SIGKILL');

    const second = await startFumidai(LIMITS, { dir: first.dir });
    after(() => second.cleanup());
    assert.match(await policyRequest(second.policyPort, rcpt('mallory', 'c')), /^550 5\.7\.1 /);
    const audit = await second.cli(['audit', '--json']);
    const entries = (JSON.parse(audit.stdout) as { entries: { action: string; sender: string }[] }).entries;
    assert.ok(entries.some((e) => e.action === 'suspend' && e.sender === 'mallory'));
    assert.match(second.output(), /1 suspended sender IDs restored/);
    // A graceful stop saves the counters, so a restart keeps alice's window.
    assert.equal(await policyRequest(second.policyPort, rcpt('bob', 'd')), 'DUNNO');
    assert.equal(await policyRequest(second.policyPort, eom('bob', 'd')), 'DUNNO');
    assert.equal(await policyRequest(second.policyPort, rcpt('bob', 'e')), 'DUNNO');
    assert.equal(await policyRequest(second.policyPort, eom('bob', 'e')), 'DUNNO');
    await second.kill('SIGTERM');
    const third = await startFumidai(LIMITS, { dir: first.dir });
    after(() => third.cleanup());
    assert.match(await policyRequest(third.policyPort, rcpt('bob', 'f')), /^450 4\.7\.1 /, 'bob used his 2 messages before the restart');
    const released = await third.cli(['release', 'mallory']);
    assert.equal(released.code, 0, released.stderr);
    assert.equal(await policyRequest(third.policyPort, rcpt('mallory', 'g')), 'DUNNO');
  });

  it('the admin API refuses bad requests with clear errors and keeps working', async () => {
    const p = await startFumidai();
    after(() => p.cleanup());
    const noAuth = await fetch(`${p.adminUrl}/api/v1/health`);
    assert.equal(noAuth.status, 401);
    const cases: [string, string, unknown, number, RegExp][] = [
      ['POST', '/api/v1/senders/alice/suspend', {}, 400, /reason/],
      ['POST', '/api/v1/senders/alice/suspend', '{not json', 400, /not valid JSON/],
      ['POST', '/api/v1/senders/alice/suspend', '[1,2]', 400, /JSON object/],
      ['POST', '/api/v1/senders/alice/release', {}, 409, /no open suspension/],
      ['PUT', '/api/v1/users/alice', { limits: [{ messages: -1, recipients: 2 }] }, 400, /limits/],
      ['PUT', '/api/v1/users/alice', { bulkWindows: [{ from: 'yesterday', until: 'x', limits: [] }] }, 400, /bulkWindows\[0\]/],
      ['GET', '/api/v1/top?by=addresses', undefined, 400, /by: one of/],
      ['GET', '/api/v1/top?window=forever', undefined, 400, /window/],
      ['GET', '/api/v1/audit?limit=0', undefined, 400, /limit/],
      ['GET', '/api/v1/senders/%E0%A4%A', undefined, 400, /URL encoding/],
      ['GET', '/api/v1/nothing', undefined, 404, /no such endpoint/],
    ];
    for (const [method, path, body, status, message] of cases) {
      const r = await p.admin(method, path, body);
      assert.equal(r.status, status, `${method} ${path}`);
      assert.match(String(r.body.error), message);
    }
    const big = await p.admin('POST', '/api/v1/senders/alice/suspend', { reason: 'x'.repeat(100_000) });
    assert.equal(big.status, 413);
    const health = await p.admin('GET', '/api/v1/health');
    assert.equal(health.status, 200);
    assert.equal(health.body.ok, true);
  });

  it('lookup, top and user commands show what support needs', async () => {
    const p = await startFumidai(LIMITS);
    after(() => p.cleanup());
    for (const [i, ip] of ['126.1.1.1', '1.72.3.4', '126.1.1.1'].entries()) {
      await policyRequest(p.policyPort, { ...rcpt('carol', `m${i}`), client_address: ip });
      await policyRequest(p.policyPort, { ...eom('carol', `m${i}`), client_address: ip });
    }
    const look = await p.cli(['lookup', 'carol']);
    assert.equal(look.code, 0, look.stderr);
    assert.match(look.stdout, /hour \(1h\)\s+2\s+2\s+2\s+10/);
    // The source IP table shows each address's country (both addresses are Japanese) and
    // network operator (SoftBank, NTT DOCOMO: what the familiar-operator exception compares).
    assert.match(look.stdout, /126\.1\.1\.1\s+JP\s+AS17676\s+2/);
    assert.match(look.stdout, /1\.72\.3\.4\s+JP\s+AS9605\s+1/);
    assert.match(look.stdout, /Distinct countries: .*1 in 1h/);
    assert.match(look.stdout, /defer\s+450/);
    const top = await p.cli(['top', '--by', 'source-ips', '--window', '1h', '--json']);
    assert.deepEqual((JSON.parse(top.stdout) as { entries: unknown[] }).entries, [{ sender: 'carol', value: 2 }]);
    const byCountries = await p.cli(['top', '--by', 'countries', '--window', '1h', '--json']);
    assert.deepEqual((JSON.parse(byCountries.stdout) as { entries: unknown[] }).entries, [{ sender: 'carol', value: 1 }]);
    const user = await p.cli(['user', 'carol', '--limits', '5/20']);
    assert.equal(user.code, 0, user.stderr);
    assert.equal(await policyRequest(p.policyPort, rcpt('carol', 'm9')), 'DUNNO', 'the per-user limit of 5 applies');
    const bad = await p.cli(['user', 'carol', '--limits', '5']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /messages\/recipients/);
  });
});
