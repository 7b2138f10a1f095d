import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { senderId } from '../../src/engine/types.ts';
import { headerAddresses, normaliseAddress } from '../../src/identity/addresses.ts';
import { addressesIn, sourceFixture, T0 } from './source-fixture.ts';

// Countermeasure 5 through the engine: login vs envelope From (every door) and header From
// (doors that see headers), scoped to connections from abroad by default.

const user = (id: string, extra: Record<string, unknown> = {}) => ({ sender: senderId(id), limits: null, bulkWindows: [], createdAt: T0, ...extra });
const [jp] = addressesIn('JP', 1) as [string];
const [us] = addressesIn('US', 1) as [string];
const abroadOk = { abroad: { defaultAllow: true }, regions: { enabled: false } };

describe('spoofing: addresses', () => {
  it('normalises case, angle brackets and sub-addresses', () => {
    assert.equal(normaliseAddress('<Alice+news@Example.JP>', '+'), 'alice@example.jp');
    assert.equal(normaliseAddress('alice+news@example.jp', null), 'alice+news@example.jp');
    assert.equal(normaliseAddress('', '+'), '');
  });

  it('reads every address of a From header', () => {
    assert.deepEqual(headerAddresses('Alice Sato <alice@example.jp>'), ['alice@example.jp']);
    assert.deepEqual(headerAddresses('"Sato, Alice" <alice@example.jp>, bob@example.jp (Bob)'), ['alice@example.jp', 'bob@example.jp']);
    assert.deepEqual(headerAddresses('=?UTF-8?B?5L2Q6Jek?= <sato@example.jp>'), ['sato@example.jp']);
    assert.deepEqual(headerAddresses('undisclosed'), []);
  });
});

describe('spoofing: the check', () => {
  it('abroad-only (default): a mismatching envelope From is refused from abroad and accepted at home', async () => {
    const f = sourceFixture({ source: abroadOk });
    after(() => f.close());
    const home = await f.send('alice@example.jp', { ip: jp, mailFrom: 'ceo@bank.example' });
    assert.equal(home.action, 'accept');
    const away = await f.send('alice@example.jp', { ip: us, mailFrom: 'ceo@bank.example' });
    assert.equal(away.action, 'reject');
    assert.equal(away.code, 550);
    assert.match(away.text!, /^送信者アドレス（ceo@bank\.example）はこのアカウントでは使用できません/);
    const r = away.reasons.find((x) => x.module === 'spoofing')!;
    assert.equal(r.rule, 'envelope-from-mismatch');
    assert.equal(r.detail, 'envelope From ceo@bank.example is not an identity of login alice@example.jp (alice@example.jp); scope abroad-only: connection from US');
    assert.equal((await f.send('alice@example.jp', { ip: us, mailFrom: 'Alice+list@Example.jp' })).action, 'accept', 'own address, sub-addressed');
  });

  it('configured identities: primary, aliases, verified third-party addresses and whole domains', async () => {
    const f = sourceFixture({ source: abroadOk, spoofing: { scope: 'always' } });
    after(() => f.close());
    await f.records.putUser(
      user('u1001', {
        addresses: [
          { address: 'taro@example.jp', kind: 'primary' },
          { address: 'info@taro-shop.example.jp', kind: 'alias' },
          { address: 'taro.yamada@gmail.example', kind: 'third-party', verifiedAt: T0 },
          { address: '@taro-corp.example.jp', kind: 'alias' },
        ],
      }),
    );
    for (const from of ['taro@example.jp', 'info@taro-shop.example.jp', 'taro.yamada@gmail.example', 'anyone@taro-corp.example.jp']) {
      assert.equal((await f.send('u1001', { ip: jp, mailFrom: from })).action, 'accept', from);
    }
    const v = await f.send('u1001', { ip: jp, mailFrom: 'taro@example.com' });
    assert.equal(v.action, 'reject');
    assert.match(v.reasons[0]!.detail, /is not an identity of login u1001 \(taro@example\.jp, info@taro-shop\.example\.jp, taro\.yamada@gmail\.example, @taro-corp\.example\.jp\); scope always/);
  });

  it('a login without "@" uses spoofing.defaultDomains; with no identity at all nothing is judged', async () => {
    const f = sourceFixture({ spoofing: { scope: 'always', defaultDomains: ['example.jp', 'mail.example.jp'] } });
    after(() => f.close());
    assert.equal((await f.send('hanako', { ip: jp, mailFrom: 'hanako@mail.example.jp' })).action, 'accept');
    assert.equal((await f.send('hanako', { ip: jp, mailFrom: 'taro@example.jp' })).action, 'reject');
    const g = sourceFixture({ spoofing: { scope: 'always' } });
    after(() => g.close());
    assert.equal((await g.send('hanako', { ip: jp, mailFrom: 'anything@example.org' })).action, 'accept');
  });

  it('checks the header From at end of message when the door provides it', async () => {
    const f = sourceFixture({ spoofing: { scope: 'always' } });
    after(() => f.close());
    const ok = await f.send('kumi@example.jp', { ip: jp, headerFrom: 'Kumi <kumi@example.jp>' });
    assert.equal(ok.action, 'accept');
    const v = await f.send('kumi@example.jp', { ip: jp, headerFrom: '"PayPal" <service@paypal.example>' });
    assert.equal(v.action, 'reject');
    assert.equal(v.reasons[0]!.rule, 'header-from-mismatch');
    assert.match(v.text!, /The From header address service@paypal\.example may not be used/);
  });

  it('actions: defer, hold and routing to the suspect pool', async () => {
    for (const [action, expected] of [['defer', 'defer'], ['hold', 'hold'], ['pool', 'accept']] as const) {
      const f = sourceFixture({ spoofing: { scope: 'always', action, pool: 'suspect' } });
      after(() => f.close());
      const v = await f.send('mika@example.jp', { ip: jp, mailFrom: 'boss@example.org' });
      assert.equal(v.action, expected, action);
      if (action !== 'defer') assert.equal(v.pool, 'suspect', action);
      assert.equal(v.reasons[0]!.rule, 'envelope-from-mismatch');
    }
  });

  it('scope "signals": only when another signal is raised (abroad, a listing, several countries)', async () => {
    const f = sourceFixture({ source: { abroad: { defaultAllow: true } }, spoofing: { scope: 'signals' } });
    after(() => f.close());
    assert.equal((await f.send('nao@example.jp', { ip: jp, mailFrom: 'x@example.org' })).action, 'accept');
    const v = await f.send('nao@example.jp', { ip: us, mailFrom: 'x@example.org', at: T0 + 60_000 });
    assert.equal(v.action, 'reject');
    assert.match(v.reasons.find((r) => r.module === 'spoofing')!.detail, /scope signals: abroad \(US\), 2 countries$/);
    // Back home but still two countries in the hour: still checked.
    const w = await f.send('nao@example.jp', { ip: jp, mailFrom: 'x@example.org', at: T0 + 120_000 });
    assert.match(w.reasons.find((r) => r.module === 'spoofing')!.detail, /scope signals: 2 countries$/);
  });

  it('exemptions: per user (setting or config), per login domain, per From domain', async () => {
    const f = sourceFixture({ spoofing: { scope: 'always', exemptSenders: ['relay@example.jp', '@partner.example.jp'], exemptFromDomains: ['lists.example.jp'] } });
    after(() => f.close());
    await f.records.putUser(user('sys@example.jp', { spoofingExempt: true }));
    assert.equal((await f.send('sys@example.jp', { ip: jp, mailFrom: 'a@example.org' })).action, 'accept');
    assert.equal((await f.send('relay@example.jp', { ip: jp, mailFrom: 'a@example.org' })).action, 'accept');
    assert.equal((await f.send('x@partner.example.jp', { ip: jp, mailFrom: 'a@example.org' })).action, 'accept');
    assert.equal((await f.send('o@example.jp', { ip: jp, mailFrom: 'news@lists.example.jp' })).action, 'accept');
    assert.equal((await f.send('o@example.jp', { ip: jp, mailFrom: 'news@example.org' })).action, 'reject');
  });
});
