// End to end: a real Postfix consults the real `fumidai serve` (child process, own
// data folder and ports) at RCPT and END-OF-MESSAGE; swaks plays the mail clients
// (XCLIENT LOGIN = the SASL login fumidai limits). Asserts what a user's mail program
// sees and what actually reaches the next hop.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { limitReached, render, suspended, AUTH_REQUIRED } from '../../src/engine/replies.ts';
import { startFumidai, type FumidaiProcess } from '../support/fumidai-process.ts';
import { requirePostfix, startPostfix, swaks, type PostfixInstance, type SwaksResult } from './postfix/harness.ts';

const SUITE = 'policy server with real Postfix';
const FUMIDAI_BIN = new URL('../../bin/fumidai.js', import.meta.url).pathname;

const req = await requirePostfix(SUITE, { checks: [{ name: 'bin/fumidai.js', ok: () => existsSync(FUMIDAI_BIN) }] });

const LIMIT = 3;
const LANGUAGES = ['ja', 'en'] as const;
const SUPPORT = 'the example.jp support desk';

describe(SUITE, { ...req, timeout: 60_000 }, () => {
  let fumidai: FumidaiProcess;
  let pf: PostfixInstance;
  let seq = 0;

  before(async () => {
    fumidai = await startFumidai({
      limits: { windows: [{ name: 'hour', seconds: '1h', messages: LIMIT, recipients: 100 }] },
      replies: { languages: [...LANGUAGES], support: SUPPORT },
    });
    const policy = `check_policy_service inet:${fumidai.policy}`;
    pf = await startPostfix({
      policy: `inet:${fumidai.policy}`,
      extraMain: {
        // The policy service runs before the relay decision, so an unauthenticated
        // client gets fumidai's answer (in production, permit_sasl_authenticated
        // in smtpd_relay_restrictions refuses such a client even earlier).
        smtpd_relay_restrictions: '',
        smtpd_recipient_restrictions: `${policy}, permit_sasl_authenticated, reject`,
      },
    });
  });
  after(async () => {
    await pf?.stop();
    await fumidai?.cleanup();
  });

  /** One message from `login` (XCLIENT LOGIN) at a fixed client address per user. */
  function send(login: string, addr: string): Promise<SwaksResult> {
    seq += 1;
    return swaks({
      port: pf.port,
      from: login,
      to: `rcpt${seq}@example.com`,
      login,
      addr,
      headers: { 'X-Test-Id': `${login}#${seq}` },
    });
  }

  function delivered(login: string): number {
    return pf.sink!.messages().filter((m) => m.header('X-Test-Id')?.startsWith(`${login}#`)).length;
  }

  /** The text the client sees for a policy reply at RCPT. */
  function rcptText(enhanced: string, rcpt: string, text: string): string {
    return `${enhanced} <${rcpt}>: Recipient address rejected: ${text}`;
  }

  test(`limit ${LIMIT} messages/hour: exactly ${LIMIT} accepted, the next deferred with fumidai's text; another user unaffected`, async () => {
    const alice = 'alice@example.jp';
    for (let i = 1; i <= LIMIT; i++) {
      const r = await send(alice, '203.0.113.1');
      assert.equal(r.exitCode, 0, `message ${i} of ${LIMIT}:\n${r.transcript}`);
      assert.ok(r.accepted);
    }
    const over = await send(alice, '203.0.113.1');
    assert.ok(over.final !== null && over.final.code >= 400 && over.final.code < 500, `expected 4xx:\n${over.transcript}`);
    assert.equal(over.accepted, false);
    assert.equal(over.final.code, 450);
    assert.equal(over.lastRcpt?.text, rcptText('4.7.1', `rcpt${seq}@example.com`, render(limitReached('messages', 3600, LIMIT), LANGUAGES)));

    const bob = 'bob@example.jp';
    const b = await send(bob, '203.0.113.2');
    assert.equal(b.exitCode, 0, b.transcript);

    await pf.sink!.waitUntil((m) => m.header('X-Test-Id')?.startsWith(`${bob}#`) === true);
    await pf.sink!.waitFor(LIMIT + 1);
    assert.equal(delivered(alice), LIMIT);
    assert.equal(delivered(bob), 1);
    assert.deepEqual(await pf.queue(), [], 'the deferred message was never queued');

    const again = await send(alice, '203.0.113.1');
    assert.equal(again.lastRcpt?.code, 450, 'still over the limit within the hour');
  });

  test('fumidai suspend gives 5xx with the suspension text; release lets the user send again', async () => {
    const carol = 'carol@example.jp';
    const first = await send(carol, '203.0.113.3');
    assert.equal(first.exitCode, 0, first.transcript);
    const firstSeq = seq;

    const s = await fumidai.cli(['suspend', carol, '--reason', 'phished, reported by the user']);
    assert.equal(s.code, 0, s.stderr);
    const refused = await send(carol, '203.0.113.3');
    assert.equal(refused.accepted, false, refused.transcript);
    assert.equal(refused.lastRcpt?.code, 550);
    assert.equal(refused.lastRcpt?.text, rcptText('5.7.1', `rcpt${seq}@example.com`, render(suspended(SUPPORT), LANGUAGES)));

    const r = await fumidai.cli(['release', carol]);
    assert.equal(r.code, 0, r.stderr);
    const after = await send(carol, '203.0.113.3');
    assert.equal(after.exitCode, 0, after.transcript);
    assert.ok(after.accepted);

    await pf.sink!.waitUntil((m) => m.header('X-Test-Id') === `${carol}#${seq}`);
    await pf.sink!.waitUntil((m) => m.header('X-Test-Id') === `${carol}#${firstSeq}`);
    assert.equal(delivered(carol), 2);
  });

  test('a client without SASL login (no XCLIENT LOGIN) is refused by fumidai', async () => {
    seq += 1;
    const r = await swaks({ port: pf.port, from: 'nobody@example.jp', to: `rcpt${seq}@example.com`, addr: '203.0.113.4' });
    assert.equal(r.exitCode, 24, r.transcript);
    assert.equal(r.lastRcpt?.code, 530);
    assert.equal(r.lastRcpt?.text, rcptText('5.7.0', `rcpt${seq}@example.com`, render(AUTH_REQUIRED, LANGUAGES)));
  });
});
