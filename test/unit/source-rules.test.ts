import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { senderId } from '../../src/engine/types.ts';
import { addressesIn, sourceFixture, T0 } from './source-fixture.ts';

// Countermeasure 3 through the engine, with the shipped country database: the abroad
// switch and travel exceptions, several countries at once, impossible travel, and the
// operator's lists. Addresses are picked by looking them up in the database.

const HOUR = 3600_000;
const user = (id: string, extra: Record<string, unknown> = {}) => ({ sender: senderId(id), limits: null, bulkWindows: [], createdAt: T0, ...extra });

describe('source: sending from abroad', () => {
  const [jp] = addressesIn('JP', 1) as [string];
  const [us] = addressesIn('US', 1) as [string];

  it('is refused by default, in Japanese first, saying where to turn it on; once per day as an awareness notice', async () => {
    const f = sourceFixture({ source: { abroad: { portal: 'マイページ https://my.example.jp/abroad' } } });
    after(() => f.close());
    assert.equal((await f.send('alice@example.jp', { ip: jp })).action, 'accept');
    const v = await f.send('alice@example.jp', { ip: us, at: T0 + 2 * HOUR });
    assert.equal(v.action, 'reject');
    assert.equal(v.code, 550);
    assert.equal(v.enhanced, '5.7.1');
    assert.match(v.text!, /^海外（US）からの送信は許可されていません。.*マイページ https:\/\/my\.example\.jp\/abroad.* \/ Sending from abroad \(US\) is not enabled/);
    const r = v.reasons.find((x) => x.rule === 'abroad-off')!;
    assert.match(r.detail, /sending from US \(.+\) while sending from abroad is off \(default for users without a setting: off\)/);
    await f.send('alice@example.jp', { ip: us, at: T0 + 3 * HOUR });
    const notices = (await f.records.notices(senderId('alice@example.jp'), 10)).filter((n) => n.kind === 'abroad-attempt');
    assert.equal(notices.length, 1, 'one notice per day, not one per attempt');
    assert.equal(notices[0]!.data.country, 'US');
  });

  it('is accepted when the user turned it on, or by the operator default; defer instead of reject is configurable', async () => {
    const f = sourceFixture({ source: { abroad: { action: 'defer' } } });
    after(() => f.close());
    await f.records.putUser(user('bob@example.jp', { allowAbroad: true }));
    assert.equal((await f.send('bob@example.jp', { ip: us })).action, 'accept');
    const v = await f.send('carol@example.jp', { ip: us });
    assert.equal(v.action, 'defer');
    assert.equal(v.code, 450);
    const g = sourceFixture({ source: { abroad: { defaultAllow: true } } });
    after(() => g.close());
    assert.equal((await g.send('carol@example.jp', { ip: us })).action, 'accept');
    await g.records.putUser(user('dave@example.jp', { allowAbroad: false }));
    assert.equal((await g.send('dave@example.jp', { ip: us })).action, 'reject', 'the user switched it off');
  });

  it('a travel exception lets the user through until it ends', async () => {
    const f = sourceFixture();
    after(() => f.close());
    const until = T0 + 7 * 24 * HOUR;
    await f.records.putUser(user('erin@example.jp', { allowAbroad: false, abroadUntil: until }));
    assert.equal((await f.send('erin@example.jp', { ip: us, at: T0 + HOUR })).action, 'accept');
    assert.equal((await f.send('erin@example.jp', { ip: us, at: until - 1000 })).action, 'accept');
    const v = await f.send('erin@example.jp', { ip: us, at: until + 1000 });
    assert.equal(v.action, 'reject');
    assert.match(v.reasons[0]!.detail, /user setting: sending from abroad off; travel exception ended/);
  });

  it('internal addresses and trusted relays are never abroad; unknown public addresses are', async () => {
    const f = sourceFixture({ source: { reputation: { allow: { cidrs: [`${us}/32`] } } } });
    after(() => f.close());
    for (const [i, ip] of ['127.0.0.1', '10.1.2.3', '192.168.0.9', '100.64.0.1', '203.0.113.5', '::1', 'fd00::1', '::ffff:127.0.0.1', us].entries()) {
      assert.equal((await f.send(`fay${i}@example.jp`, { ip })).action, 'accept', ip);
    }
    const unknown = await f.resolver.resolve('0.0.0.0', 'rcpt');
    assert.equal(unknown.internal, true);
    const info = await f.resolver.resolve(us, 'rcpt');
    assert.equal(info.trusted, `${us}/32`);
    assert.equal(info.place.country, '--');
  });

  it('geo overrides correct blocks the database places wrongly', async () => {
    const block = `${us.split('.').slice(0, 3).join('.')}.0/24`;
    const f = sourceFixture({ source: { geo: { overrides: { [block]: 'JP' } } } });
    after(() => f.close());
    assert.equal((await f.resolver.resolve(us, 'rcpt')).place.country, 'JP');
    assert.equal((await f.send('gen@example.jp', { ip: us })).action, 'accept');
  });

  it('users allowed abroad can get tighter limits while abroad (IIJmio: 100 a day)', async () => {
    const f = sourceFixture({ limits: { windows: [{ name: 'day', seconds: '1d', messages: 10, recipients: 100 }] }, source: { abroad: { limitScale: 0.3 } } });
    after(() => f.close());
    await f.records.putUser(user('gus@example.jp', { allowAbroad: true }));
    const actions = [];
    for (let i = 0; i < 4; i++) actions.push((await f.send('gus@example.jp', { ip: us, at: T0 + i * 60_000 })).action);
    assert.deepEqual(actions, ['accept', 'accept', 'accept', 'defer']);
    const v = await f.send('gus@example.jp', { ip: us, at: T0 + 5 * 60_000 });
    assert.match(v.reasons.find((r) => r.rule === 'abroad-limits')!.detail, /limits ×0\.3: 3 messages in 1d already, limit 3/);
    // Back home (after the one-hour window of the several-countries rule) the normal limit applies.
    assert.equal((await f.send('gus@example.jp', { ip: jp, at: T0 + 2 * HOUR })).action, 'accept');
  });
});

describe('source: several countries at once', () => {
  const [jp] = addressesIn('JP', 1) as [string];
  const [us] = addressesIn('US', 1) as [string];
  const [br] = addressesIn('BR', 1) as [string];
  const [de] = addressesIn('DE', 1) as [string];
  const abroadOk = { source: { abroad: { defaultAllow: true } } };

  it('three countries in an hour (logins and sends) defer, with one awareness notice per step; four suspend', async () => {
    const f = sourceFixture(abroadOk);
    after(() => f.close());
    const id = 'hana@example.jp';
    assert.equal((await f.send(id, { ip: jp, at: T0 })).action, 'accept');
    // A login counts as well as a send (e.g. IMAP from another country).
    await f.login(id, us, T0 + 5 * 60_000);
    const two = await f.send(id, { ip: us, at: T0 + 10 * 60_000 });
    assert.equal(two.action, 'accept', 'two countries: tighter limits, still under them');
    assert.match(two.reasons.map((r) => r.detail).join('\n'), /2 countries in 1h \(logins and sends\), step 2\+: limit/);
    const three = await f.send(id, { ip: br, at: T0 + 20 * 60_000 });
    assert.equal(three.action, 'defer');
    assert.equal(three.code, 450);
    assert.match(three.text!, /^短時間に複数の国（1hに3か国）からの送信があり/);
    const notices = (await f.records.notices(senderId(id), 20)).filter((n) => n.kind === 'multiple-countries');
    assert.deepEqual(notices.map((n) => n.data.step).sort(), [2, 3]);
    const four = await f.send(id, { ip: de, at: T0 + 30 * 60_000 });
    assert.equal(four.action, 'reject');
    assert.ok(four.effects.some((e) => e.type === 'suspend' && e.rule === 'countries'));
    assert.ok(await f.records.activeSuspension(senderId(id)));
  });

  it('countries outside the window are forgotten; one country from many addresses is one country', async () => {
    const f = sourceFixture(abroadOk);
    after(() => f.close());
    const id = 'ian@example.jp';
    for (const [i, ip] of addressesIn('JP', 1).concat(addressesIn('US', 1)).entries()) await f.send(id, { ip, at: T0 + i * 60_000 });
    const later = await f.send(id, { ip: br, at: T0 + 2 * HOUR });
    assert.equal(later.reasons.find((r) => r.rule === 'countries'), undefined, JSON.stringify(later.reasons));
  });

  it('impossible travel: two places too far apart for the time between them', async () => {
    const f = sourceFixture({ ...abroadOk, source: { ...abroadOk.source, regions: { steps: [] } } });
    after(() => f.close());
    const id = 'jun@example.jp';
    await f.send(id, { ip: jp, at: T0 });
    const v = await f.send(id, { ip: us, at: T0 + 2 * HOUR });
    const r = v.reasons.find((x) => x.rule === 'impossible-travel');
    assert.ok(r, JSON.stringify(v.reasons));
    assert.match(r.detail, /^JP \(.+\) then US \(.+\): \d+ km in 120 min = \d+ km\/h, limit 1000 km\/h$/);
    assert.ok((await f.records.notices(senderId(id), 10)).some((n) => n.kind === 'impossible-travel'));
    // A flight's worth of time later it is possible again (JP→US centroids ≈ 10,000 km).
    const g = sourceFixture({ ...abroadOk, source: { ...abroadOk.source, regions: { steps: [] } } });
    after(() => g.close());
    await g.send(id, { ip: jp, at: T0 });
    const ok = await g.send(id, { ip: us, at: T0 + 13 * HOUR });
    assert.equal(ok.reasons.find((x) => x.rule === 'impossible-travel'), undefined);
  });
});

describe('source: operator lists', () => {
  const [jp1, jp2] = addressesIn('JP', 2) as [string, string];

  it('deny lists by CIDR refuse; allow lists win over deny lists; a Tor exit list file is reloaded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fumidai-tor-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const tor = join(dir, 'exits.txt');
    writeFileSync(tor, `# exit list\nExitAddress ${jp2} 2026-11-01 00:00:00\n`);
    const f = sourceFixture({ source: { reputation: { deny: { cidrs: [`${jp1.split('.').slice(0, 3).join('.')}.0/24`], action: 'defer' }, torExitList: tor, torAction: 'reject' } } });
    after(() => f.close());
    const d = await f.send('kai@example.jp', { ip: jp1 });
    assert.equal(d.action, 'defer');
    assert.match(d.reasons[0]!.detail, /is in the deny list entry/);
    const t = await f.send('kai@example.jp', { ip: jp2 });
    assert.equal(t.action, 'reject');
    assert.equal(t.reasons[0]!.rule, 'listed-tor');
    writeFileSync(tor, '\n');
    f.resolver.reload();
    assert.equal((await f.send('kai@example.jp', { ip: jp2 })).action, 'accept');
  });

  it('deny and allow lists by ASN use the bundled ASN database', async () => {
    const f0 = sourceFixture({ source: { reputation: { asnDatabase: null, deny: { asns: [1] } } } });
    after(() => f0.close());
    const asn = f0.resolver.asn!.lookup({ v: 4, n: 0, text: '' } as never);
    assert.equal(asn, null);
    const info = await f0.resolver.resolve(jp1, 'rcpt');
    assert.ok(info.asn !== null && info.asn > 0, `${jp1} has an AS number in the database`);
    const f = sourceFixture({ source: { reputation: { deny: { asns: [info.asn!] } } } });
    after(() => f.close());
    const v = await f.send('lee@example.jp', { ip: jp1 });
    assert.equal(v.action, 'reject');
    assert.match(v.reasons[0]!.detail, new RegExp(`is in AS${info.asn}`));
    const g = sourceFixture({ source: { reputation: { deny: { asns: [info.asn!] }, allow: { asns: [info.asn!] } } } });
    after(() => g.close());
    assert.equal((await g.send('lee@example.jp', { ip: jp1 })).action, 'accept', 'an allow-listed network is trusted');
  });
});
