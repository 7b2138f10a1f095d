// Countermeasure 5, header From half, end to end: a real Postfix with fumidai's policy
// server and milter (`fumidai serve`, defaults: scope abroad-only). The envelope From is
// the user's own address, so the policy server lets the message in; the From header names
// someone else. From abroad the milter refuses it at end of data with fumidai's own reply;
// the same message from Japan is delivered. Addresses are picked from the country database.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { render, senderMismatch } from '../../src/engine/replies.ts';
import { freePort, startFumidai, type FumidaiProcess } from '../support/fumidai-process.ts';
import { addressesIn } from '../unit/source-fixture.ts';
import { requirePostfix, startPostfix, swaks, type PostfixInstance, type SwaksResult } from './postfix/harness.ts';

const SUITE = 'header From spoofing (countermeasure 5) through the milter with real Postfix';
const FUMIDAI_BIN = new URL('../../bin/fumidai.js', import.meta.url).pathname;
const req = await requirePostfix(SUITE, { checks: [{ name: 'bin/fumidai.js', ok: () => existsSync(FUMIDAI_BIN) }] });
const LANGUAGES = ['ja', 'en'] as const;

describe(SUITE, { ...req, timeout: 90_000 }, () => {
  let fumidai: FumidaiProcess;
  let pf: PostfixInstance;
  let seq = 0;
  const [jp] = addressesIn('JP', 1) as [string];
  const [us] = addressesIn('US', 1) as [string];
  const login = 'yamada@example.jp';

  before(async () => {
    const milterPort = await freePort();
    // Sending from abroad allowed, so that only the spoofing check decides.
    fumidai = await startFumidai({
      replies: { languages: [...LANGUAGES] },
      source: { abroad: { defaultAllow: true } },
      milter: { listeners: [{ listen: `127.0.0.1:${milterPort}` }] },
    });
    pf = await startPostfix({ policy: `inet:${fumidai.policy}`, milters: `inet:127.0.0.1:${milterPort}` });
  });
  after(async () => {
    await pf?.stop();
    await fumidai?.cleanup();
  });

  function send(addr: string, headerFrom: string): Promise<SwaksResult> {
    seq += 1;
    const data = [`From: ${headerFrom}`, `To: rcpt${seq}@example.com`, `Subject: test ${seq}`, `X-Test-Id: hdr#${seq}`, '', 'Hello.', '.', ''].join('\r\n');
    return swaks({ port: pf.port, from: login, to: `rcpt${seq}@example.com`, login, addr, data });
  }

  test('a From header that is not one of the login\'s addresses is refused from abroad, accepted from Japan', async () => {
    const spoof = 'Bank Support <support@bank.example>';
    const away = await send(us, spoof);
    assert.equal(away.accepted, false, away.transcript);
    assert.equal(away.endOfData?.code, 550, away.transcript);
    assert.equal(away.endOfData?.text, `5.7.1 ${render(senderMismatch('support@bank.example', 'header'), LANGUAGES)}`);
    const home = await send(jp, spoof);
    assert.ok(home.accepted, `abroad-only: not checked at home\n${home.transcript}`);
    const own = await send(us, `Yamada Taro <${login}>`);
    assert.ok(own.accepted, `own address in the From header from abroad\n${own.transcript}`);
  });
});
