// Countermeasure 5 end to end with a real Postfix and the real `fumidai serve`: under the
// default scope "abroad-only", an envelope From that is not one of the login's addresses
// is refused when the connection comes from abroad and accepted from Japan (legitimate
// third-party sending at home keeps working). Addresses are picked from the database.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { render, senderMismatch } from '../../src/engine/replies.ts';
import { startFumidai, type FumidaiProcess } from '../support/fumidai-process.ts';
import { addressesIn } from '../unit/source-fixture.ts';
import { requirePostfix, startPostfix, swaks, type PostfixInstance, type SwaksResult } from './postfix/harness.ts';

const SUITE = 'sender spoofing (countermeasure 5) with real Postfix';
const FUMIDAI_BIN = new URL('../../bin/fumidai.js', import.meta.url).pathname;
const req = await requirePostfix(SUITE, { checks: [{ name: 'bin/fumidai.js', ok: () => existsSync(FUMIDAI_BIN) }] });

const LANGUAGES = ['ja', 'en'] as const;

describe(SUITE, { ...req, timeout: 90_000 }, () => {
  let fumidai: FumidaiProcess;
  let pf: PostfixInstance;
  let seq = 0;
  const [jp] = addressesIn('JP', 1) as [string];
  const [us, us2] = addressesIn('US', 2) as [string, string];

  before(async () => {
    // Travellers allowed abroad by default, so that only the spoofing check decides.
    fumidai = await startFumidai({ replies: { languages: [...LANGUAGES] }, source: { abroad: { defaultAllow: true } }, spoofing: { scope: 'abroad-only' } });
    pf = await startPostfix({ policy: `inet:${fumidai.policy}` });
  });
  after(async () => {
    await pf?.stop();
    await fumidai?.cleanup();
  });

  function send(login: string, addr: string, from: string): Promise<SwaksResult> {
    seq += 1;
    return swaks({ port: pf.port, from, to: `rcpt${seq}@example.com`, login, addr, headers: { 'X-Test-Id': `${login}#${seq}` } });
  }

  test('abroad-only: a mismatching envelope From is refused from abroad and accepted from Japan', async () => {
    const login = 'kato@example.jp';
    const home = await send(login, jp, 'kato.taro@gmail.example');
    assert.equal(home.exitCode, 0, home.transcript);
    assert.ok(home.accepted, 'third-party sending at home');
    const away = await send(login, us, 'kato.taro@gmail.example');
    assert.equal(away.accepted, false, away.transcript);
    assert.equal(away.lastRcpt?.code, 550);
    assert.equal(away.lastRcpt?.text, `5.7.1 <rcpt${seq}@example.com>: Recipient address rejected: ${render(senderMismatch('kato.taro@gmail.example', 'envelope'), LANGUAGES)}`);
    const own = await send(login, us, login);
    assert.ok(own.accepted, `own address from abroad\n${own.transcript}`);
    const look = JSON.parse((await fumidai.cli(['lookup', login, '--json'])).stdout) as { recentDecisions: { action: string; detail: string }[] };
    const refusal = look.recentDecisions.find((d) => d.action === 'reject');
    assert.match(refusal?.detail ?? '', /spoofing\/envelope-from-mismatch: envelope From kato\.taro@gmail\.example is not an identity of login kato@example\.jp \(kato@example\.jp\); scope abroad-only: connection from US/);
  });

  test('a verified third-party address registered for the user is accepted from abroad too', async () => {
    const login = 'sato@example.jp';
    const put = await fumidai.cli(['user', login, '--address', login, '--third-party', 'sato.hanako@gmail.example']);
    assert.equal(put.code, 0, put.stderr);
    const r = await send(login, us2, 'sato.hanako@gmail.example');
    assert.ok(r.accepted, r.transcript);
    const other = await send(login, us2, 'someone@gmail.example');
    assert.equal(other.lastRcpt?.code, 550, other.transcript);
  });
});
