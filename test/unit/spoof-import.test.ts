import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { configFromObject } from '../../src/config/load.ts';
import { senderId } from '../../src/engine/types.ts';
import { importIdentities, parseImportLine } from '../../src/identity/import.ts';
import { SqliteRecordStore } from '../../src/store/sqlite/sqlite-record-store.ts';
import { policyRequest, startFumidai } from '../support/fumidai-process.ts';
import { addressesIn, T0 } from './source-fixture.ts';

// Identities (countermeasure 5) and the abroad switch (countermeasure 3) managed in bulk
// and one by one: the import format, its rate into the SQLite file, and the admin API/CLI.

const config = configFromObject({});
const opts = { now: T0, config };

describe('identities: import lines', () => {
  it('turns a line into a patch, or names what is wrong', () => {
    const p = parseImportLine('{"user":"Alice@Example.jp","primary":"alice@example.jp","aliases":["a.sato@example.jp"],"thirdParty":["alice@gmail.example"],"allowAbroad":false}', opts);
    assert.ok(!(p instanceof Error));
    assert.deepEqual(p, {
      sender: 'alice@example.jp',
      addresses: [
        { address: 'alice@example.jp', kind: 'primary' },
        { address: 'a.sato@example.jp', kind: 'alias' },
        { address: 'alice@gmail.example', kind: 'third-party', verifiedAt: T0 },
      ],
      allowAbroad: false,
    });
    const travel = parseImportLine('{"user":"bob","abroadUntil":"2026-11-09T00:00:00+09:00"}', opts);
    assert.deepEqual(travel, { sender: 'bob', abroadUntil: Date.parse('2026-11-09T00:00:00+09:00') });
    const bad: [string, RegExp][] = [
      ['{"user":"x","aliases":["not an address"]}', /aliases\[0\]: "not an address" is not an address/],
      ['{"user":"x","primary":"@@"}', /primary: /],
      ['{"user":"x","abroadUntil":"2027-06-01T00:00:00Z"}', /more than 31 days ahead/],
      ['{"user":"x","abroadUntil":"2026-11-09"}', /with a zone/],
      ['{"user":"x","colour":"red"}', /unknown field "colour"/],
      ['{"aliases":[]}', /user: /],
      ['[1]', /JSON object/],
      ['{', /not valid JSON/],
    ];
    for (const [line, message] of bad) {
      const r = parseImportLine(line, opts);
      assert.ok(r instanceof Error, line);
      assert.match(r.message, message, line);
    }
  });

  it('imports a large file in batched transactions, keeping fields it does not set (rate printed)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fumidai-import-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const records = new SqliteRecordStore({ file: join(dir, 'f.sqlite'), flushMs: 0 });
    after(() => records.close());
    await records.putUser({ sender: senderId('u0000007'), limits: [{ messages: 5, recipients: 9 }, { messages: 50, recipients: 90 }, { messages: 500, recipients: 900 }], bulkWindows: [], createdAt: 1 });
    const N = 200_000;
    async function* lines(): AsyncGenerator<string> {
      let chunk = '';
      for (let i = 0; i < N; i++) {
        const id = `u${String(i).padStart(7, '0')}`;
        chunk += `${JSON.stringify({ user: id, primary: `${id}@example.jp`, aliases: [`${id}.alias@example.jp`], ...(i % 10 === 0 ? { thirdParty: [`${id}@gmail.example`] } : {}), allowAbroad: i % 50 === 0 })}\n`;
        if (i % 1000 === 999) {
          yield chunk;
          chunk = '';
        }
      }
      yield `${chunk}{"user":"broken","aliases":"x"}\n`;
    }
    const r = await importIdentities(lines(), records, { ...opts, batchSize: 5000 });
    process.stdout.write(`# identity import: ${r.users} users, ${r.addresses} addresses in ${r.seconds.toFixed(2)} s = ${r.usersPerSecond} users/s (SQLite, batches of 5000)\n`);
    assert.equal(r.users, N);
    assert.equal(r.problemCount, 1);
    assert.equal(r.problems[0]!.line, N + 1);
    assert.equal(r.batches, N / 5000);
    const kept = await records.user(senderId('u0000007'));
    assert.equal(kept?.limits?.[0]?.messages, 5, 'limits set before the import are kept');
    assert.equal(kept?.createdAt, 1);
    assert.deepEqual(kept?.addresses?.map((a) => a.address), ['u0000007@example.jp', 'u0000007.alias@example.jp']);
    const fresh = await records.user(senderId('u0000050'));
    assert.equal(fresh?.allowAbroad, true);
    assert.equal(fresh?.createdAt, T0);
    assert.equal(fresh?.addresses?.length, 3);
    // A second import of the same users replaces what it sets.
    await importIdentities(Readable.from(['{"user":"u0000050","allowAbroad":null,"aliases":[]}\n']), records, opts);
    const again = await records.user(senderId('u0000050'));
    assert.equal(again?.allowAbroad, undefined, 'null in an import means "back to the operator default"');
    assert.deepEqual(again?.addresses, []);
  });
});

describe('identities and the abroad switch through the admin API and CLI', () => {
  it('import, per-user changes, and lookup showing countries, the switch and the addresses', async () => {
    const p = await startFumidai();
    after(() => p.cleanup());
    const file = join(p.dir, 'ids.jsonl');
    writeFileSync(file, '{"user":"sato@example.jp","primary":"sato@example.jp","thirdParty":["sato@gmail.example"]}\n{"user":"bad"\n{"user":"ito@example.jp","allowAbroad":true}\n');
    const imp = await p.cli(['identities', 'import', file]);
    assert.equal(imp.code, 0, imp.stderr);
    assert.match(imp.stdout, /Imported 2 users \(2 addresses\) from 3 lines/);
    assert.match(imp.stdout, /line 2: not valid JSON/);

    const [us] = addressesIn('US', 1) as [string];
    const [jp] = addressesIn('JP', 1) as [string];
    const req = (user: string, ip: string, sender: string, instance: string) => ({ protocol_state: 'RCPT', sasl_username: user, client_address: ip, sender, recipient: 'x@example.com', instance });
    assert.match(await policyRequest(p.policyPort, req('sato@example.jp', us, 'sato@example.jp', 'a')), /^550 5\.7\.1 海外（US）からの送信は許可されていません/);
    assert.equal(await policyRequest(p.policyPort, req('ito@example.jp', us, 'ito@example.jp', 'b')), 'DUNNO');
    assert.match(await policyRequest(p.policyPort, req('ito@example.jp', us, 'boss@bank.example', 'c')), /^550 5\.7\.1 送信者アドレス（boss@bank\.example）/);

    const on = await p.cli(['user', 'sato@example.jp', '--travel-days', '7', '--alias', 'shop@sato.example.jp', '--json']);
    assert.equal(on.code, 0, on.stderr);
    const settings = (JSON.parse(on.stdout) as { settings: { abroadUntil: number; addresses: { address: string }[] } }).settings;
    assert.ok(settings.abroadUntil > Date.now() + 6 * 86400_000);
    assert.deepEqual(settings.addresses.map((a) => a.address), ['shop@sato.example.jp']);
    assert.equal(await policyRequest(p.policyPort, req('sato@example.jp', us, 'shop@sato.example.jp', 'd')), 'DUNNO');
    const tooLong = await p.cli(['user', 'sato@example.jp', '--travel-days', '90']);
    assert.equal(tooLong.code, 2);
    assert.match(tooLong.stderr, /abroadUntil: more than 31 days ahead/);
    assert.equal((await p.admin('PUT', '/api/v1/users/x', { addresses: ['a b'] })).status, 400);
    assert.equal((await p.admin('PUT', '/api/v1/users/x', { allowAbroad: 'yes' })).status, 400);

    await policyRequest(p.policyPort, req('sato@example.jp', jp, 'sato@example.jp', 'e'));
    const look = await p.cli(['lookup', 'sato@example.jp']);
    assert.equal(look.code, 0, look.stderr);
    assert.match(look.stdout, /Distinct countries: .*2 in 1h/);
    assert.match(look.stdout, /Sending from abroad: allowed \(travel exception until /);
    assert.match(look.stdout, /Addresses: shop@sato\.example\.jp \(alias\)/);
    assert.match(look.stdout, new RegExp(`${us.replaceAll('.', '\\.')}\\s+US\\s+`));
    assert.match(look.stdout, /Pace: /);
    const top = await p.cli(['top', '--by', 'countries', '--json']);
    assert.deepEqual((JSON.parse(top.stdout) as { entries: unknown[] }).entries[0], { sender: 'sato@example.jp', value: 2 });
  });
});
