// Countermeasure 3 end to end: a real Postfix consults the real `fumidai serve`; swaks
// plays the mail clients with XCLIENT ADDR= (the connection source) and LOGIN= (the SASL
// login). Client addresses are picked by looking them up in the shipped country
// database, not guessed.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { abroadRefused, manyCountries, render } from '../../src/engine/replies.ts';
import { startFumidai, type FumidaiProcess } from '../support/fumidai-process.ts';
import { addressesIn } from '../unit/source-fixture.ts';
import { requirePostfix, startPostfix, swaks, type PostfixInstance, type SwaksResult } from './postfix/harness.ts';

const SUITE = 'connection source (countermeasure 3) with real Postfix';
const FUMIDAI_BIN = new URL('../../bin/fumidai.js', import.meta.url).pathname;
const req = await requirePostfix(SUITE, { checks: [{ name: 'bin/fumidai.js', ok: () => existsSync(FUMIDAI_BIN) }] });

const LANGUAGES = ['ja', 'en'] as const;
const PORTAL = 'マイページ https://my.example.jp/settings';

describe(SUITE, { ...req, timeout: 90_000 }, () => {
  let fumidai: FumidaiProcess;
  let pf: PostfixInstance;
  let seq = 0;
  const [jp1, jp2] = addressesIn('JP', 2) as [string, string];
  const [us] = addressesIn('US', 1) as [string];
  const [br] = addressesIn('BR', 1) as [string];
  const [de] = addressesIn('DE', 1) as [string];

  before(async () => {
    fumidai = await startFumidai({ replies: { languages: [...LANGUAGES] }, source: { abroad: { portal: PORTAL } } });
    pf = await startPostfix({ policy: `inet:${fumidai.policy}` });
  });
  after(async () => {
    await pf?.stop();
    await fumidai?.cleanup();
  });

  function send(login: string, addr: string, from = login): Promise<SwaksResult> {
    seq += 1;
    return swaks({ port: pf.port, from, to: `rcpt${seq}@example.com`, login, addr, headers: { 'X-Test-Id': `${login}#${seq}` } });
  }

  const rcptText = (enhanced: string, text: string): string => `${enhanced} <rcpt${seq}@example.com>: Recipient address rejected: ${text}`;

  test('"sending from abroad" off: refused from a foreign address with the Japanese/English text, accepted from a Japanese one', async () => {
    const login = 'tanaka@example.jp';
    const home = await send(login, jp1);
    assert.equal(home.exitCode, 0, home.transcript);
    assert.ok(home.accepted);
    const away = await send(login, us);
    assert.equal(away.accepted, false, away.transcript);
    assert.equal(away.lastRcpt?.code, 550);
    assert.equal(away.lastRcpt?.text, rcptText('5.7.1', render(abroadRefused('US', PORTAL), LANGUAGES)));
    await pf.sink!.waitUntil((m) => m.header('X-Test-Id') === `${login}#${seq - 1}`);
    assert.equal(pf.sink!.messages().filter((m) => m.header('X-Test-Id')?.startsWith(`${login}#`)).length, 1);
    // The refused attempt from abroad is an awareness event for the user.
    const audit = await fumidai.admin('GET', `/api/v1/audit?sender=${encodeURIComponent(login)}`);
    assert.ok((audit.body.entries as { action: string }[]).some((e) => e.action === 'abroad-attempt'), JSON.stringify(audit.body));
  });

  test('a travel exception lets the user send from abroad until it ends', async () => {
    const login = 'suzuki@example.jp';
    const until = new Date(Date.now() + 4000).toISOString();
    const put = await fumidai.admin('PUT', `/api/v1/users/${encodeURIComponent(login)}`, { abroadUntil: until });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const during = await send(login, us);
    assert.equal(during.exitCode, 0, during.transcript);
    assert.ok(during.accepted);
    await sleep(Math.max(0, Date.parse(until) - Date.now()) + 300);
    const afterwards = await send(login, us);
    assert.equal(afterwards.lastRcpt?.code, 550, afterwards.transcript);
    assert.match(afterwards.lastRcpt?.text ?? '', /海外（US）からの送信は許可されていません/);
    const look = await fumidai.cli(['lookup', login, '--json']);
    const report = JSON.parse(look.stdout) as { abroad: { allowed: boolean; why: string } };
    assert.equal(report.abroad.allowed, false);
    assert.match(report.abroad.why, /travel exception ended/);
  });

  test('sending from three countries in an hour is penalised and an awareness event is recorded', async () => {
    const login = 'yamamoto@example.jp';
    const on = await fumidai.cli(['user', login, '--abroad', 'on']);
    assert.equal(on.code, 0, on.stderr);
    const a = await send(login, jp2);
    assert.ok(a.accepted, a.transcript);
    const b = await send(login, us);
    assert.ok(b.accepted, `two countries: tighter limits, still under them\n${b.transcript}`);
    const c = await send(login, br);
    assert.equal(c.accepted, false, c.transcript);
    assert.equal(c.lastRcpt?.code, 450);
    assert.equal(c.lastRcpt?.text, rcptText('4.7.1', render(manyCountries(3, 3600), LANGUAGES)));
    const d = await send(login, de);
    assert.equal(d.lastRcpt?.code, 550, 'four countries: sending suspended');
    const look = JSON.parse((await fumidai.cli(['lookup', login, '--json'])).stdout) as {
      suspension: { rule: string } | null;
      distinctCountries: { seconds: number; count: number }[];
      sourceIps: { ip: string; country: string }[];
    };
    assert.equal(look.suspension?.rule, 'countries');
    assert.equal(look.distinctCountries.find((x) => x.seconds === 3600)?.count, 4);
    assert.deepEqual(look.sourceIps.map((s) => s.country).sort(), ['BR', 'DE', 'JP', 'US']);
    const audit = (await fumidai.admin('GET', `/api/v1/audit?sender=${encodeURIComponent(login)}`)).body.entries as { action: string; detail: string }[];
    const awareness = audit.filter((e) => e.action === 'multiple-countries');
    assert.ok(awareness.some((e) => /countries=2/.test(e.detail)) && awareness.some((e) => /countries=3/.test(e.detail)), JSON.stringify(audit));
    const top = JSON.parse((await fumidai.cli(['top', '--by', 'countries', '--json'])).stdout) as { entries: { sender: string; value: number }[] };
    assert.deepEqual(top.entries[0], { sender: login, value: 4 });
  });
});
