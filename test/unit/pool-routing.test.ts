import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { senderId, type MessageEvent, type Verdict } from '../../src/engine/types.ts';
import { routeStatus } from '../../src/pools/routing.ts';
import { DEFAULT_ROUTING } from '../../src/pools/config.ts';
import { poolEndpoint, PoolApiError } from '../../src/pools/admin.ts';
import { CampaignTracker } from '../../src/store/memory/campaign-tracker.ts';
import { fixture, T0, type Fixture } from '../support/engine-fixture.ts';

const LAUNCH = '2026-11-01T00:00:00Z';
const DAY = 86_400_000;

const SPAM = Buffer.from('From: "WINNER" <x@example.jp>\r\nSubject: FREE MONEY!!! Claim your prize now\r\n\r\nDear friend, you have won $1,000,000! Click here http://win.example.biz/claim to claim your cash prize. Limited time offer, act now! To be removed from our mailing list reply REMOVE.\r\n');
const HAM = Buffer.from('From: Taro <taro@example.jp>\r\nSubject: Re: agenda for tomorrow\r\nMessage-ID: <a1@example.jp>\r\nDate: Mon, 2 Nov 2026 09:00:00 +0900\r\nMIME-Version: 1.0\r\n\r\nThanks for the notes. I attached the revised draft; let us go through the open points after lunch tomorrow.\r\n');

let n = 0;
function send(f: Fixture, user: string, raw: Buffer | null, at = T0): Promise<Verdict> {
  const ev: MessageEvent = { kind: 'message', t: at, door: 'milter', sender: senderId(user), ip: '126.1.2.3', mailFrom: `${user}@example.jp`, recipientCount: 1, size: raw?.length ?? 100, transaction: `m${++n}`, ...(raw !== null ? { raw } : {}) };
  f.clock.set(at);
  return f.engine.decide(ev);
}

async function newUser(f: Fixture, user: string, created = T0 - DAY): Promise<void> {
  await f.records.putUser({ sender: senderId(user), limits: null, bulkWindows: [], createdAt: created, accountCreatedAt: created });
}

const routed = (extra: Record<string, unknown> = {}) => ({ routing: { enabled: true, launchAt: LAUNCH, ...extra } });

describe('routing rules (who is routed by classification)', () => {
  const r = { ...DEFAULT_ROUTING, enabled: true, launchAt: LAUNCH, minConsentVersion: 2 };
  const launch = Date.parse(LAUNCH);
  const user = (x: Record<string, unknown>) => ({ sender: senderId('u'), limits: null, bulkWindows: [], createdAt: 0, ...x });
  it('before the launch everyone stays on the existing route', () => {
    assert.deepEqual(routeStatus(user({ accountCreatedAt: launch + 1 }), r, launch - 1), { kind: 'existing', why: 'before-launch' });
  });
  it('new user: account created at or after the launch; unknown creation time counts as existing', () => {
    assert.equal(routeStatus(user({ accountCreatedAt: launch }), r, launch + DAY).kind, 'new');
    assert.equal(routeStatus(user({ accountCreatedAt: launch - 1 }), r, launch + DAY).kind, 'existing');
    assert.equal(routeStatus(null, r, launch + DAY).kind, 'existing');
    assert.equal(routeStatus(user({}), r, launch + DAY).kind, 'existing');
  });
  it('consent counts from its time, and only for a notice version at or above minConsentVersion', () => {
    const c = { at: launch + DAY, version: 2, via: 'portal' };
    assert.equal(routeStatus(user({ poolConsent: c }), r, launch + 2 * DAY).kind, 'consented');
    assert.equal(routeStatus(user({ poolConsent: c }), r, launch + DAY - 1).kind, 'existing');
    assert.deepEqual(routeStatus(user({ poolConsent: { ...c, version: 1 } }), r, launch + 2 * DAY), { kind: 'existing', why: 'consent-version-too-old' });
  });
});

describe('content and pool modules through the engine', () => {
  it('new user: spam goes through the suspect pool, ham through the clean one, with reasons', async () => {
    const f = fixture(routed());
    await newUser(f, 'newbie');
    const s = await send(f, 'newbie', SPAM);
    assert.equal(s.action, 'accept');
    assert.equal(s.pool, 'suspect');
    const c = s.reasons.find((x) => x.module === 'content');
    assert.equal(c?.rule, 'spam-score');
    assert.ok(Number(c?.figures?.probability) >= Number(c?.figures?.threshold));
    assert.match(s.reasons.find((x) => x.module === 'pool')!.detail, /new user.*pool suspect/);
    const h = await send(f, 'newbie', HAM);
    assert.equal(h.pool, 'clean');
    assert.equal(h.reasons.some((x) => x.module === 'content'), false);
    await f.close();
  });

  it('existing user stays on the existing route until consent, then is routed by classification', async () => {
    const f = fixture(routed());
    assert.equal((await send(f, 'old', SPAM)).pool, 'legacy');
    assert.equal((await send(f, 'old', HAM)).pool, 'legacy');
    const view = (await poolEndpoint('POST', senderId('old'), 'consent', async () => ({ version: 1, via: 'portal' }), { config: f.config, records: f.records, now: T0 })) as { status: { kind: string } };
    assert.equal(view.status.kind, 'consented');
    assert.equal((await send(f, 'old', SPAM, T0 + 1000)).pool, 'suspect');
    assert.equal((await send(f, 'old', HAM, T0 + 2000)).pool, 'clean');
    const history = await f.records.poolConsents(senderId('old'));
    assert.deepEqual(history.map((c) => [c.version, c.via, c.at]), [[1, 'portal', T0]]);
    const audit = await f.records.auditLog({ sender: senderId('old'), limit: 5 });
    assert.equal(audit[0]?.action, 'pool-consent');
    await f.close();
  });

  it('admin endpoint validates input and sets the account creation time', async () => {
    const f = fixture(routed());
    const d = { config: f.config, records: f.records, now: T0 };
    await assert.rejects(poolEndpoint('POST', senderId('u'), 'consent', async () => ({ version: 0 }), d), (e: unknown) => e instanceof PoolApiError && e.status === 400);
    await assert.rejects(poolEndpoint('POST', senderId('u'), 'consent', async () => ({ version: 1, at: '2099-01-01T00:00:00Z' }), d), /future/);
    const v = (await poolEndpoint('PUT', senderId('u'), undefined, async () => ({ accountCreatedAt: '2026-11-15T00:00:00Z' }), d)) as { status: { kind: string }; route: string };
    assert.equal(v.status.kind, 'new');
    assert.equal((await send(f, 'u', HAM)).pool, 'clean');
    await f.close();
  });

  it('hold and reject thresholds', async () => {
    const f = fixture({ content: { hold: 0.5, reject: 0.999999 } });
    const v = await send(f, 'a', SPAM);
    assert.equal(v.action, 'hold');
    assert.equal(v.reasons.find((x) => x.module === 'content')?.rule, 'spam-hold');
    await f.close();
    const g = fixture({ content: { reject: 0.5 } });
    const r = await send(g, 'a', SPAM);
    assert.equal(r.action, 'reject');
    assert.equal(r.code, 550);
    assert.equal(r.enhanced, '5.7.1');
    assert.match(r.text!, /迷惑メール/);
    assert.equal((await send(g, 'b', HAM)).action, 'accept');
    await g.close();
  });

  it('campaign: the same message from several sender IDs in the window', async () => {
    const f = fixture({ ...routed(), content: { campaign: { senders: 3, windowSeconds: 600, action: 'hold' } } });
    const body = (i: number) => Buffer.from(`From: u@example.jp\r\nSubject: hello ${i}\r\nMessage-ID: <c${i}@example.jp>\r\nDate: Mon, 2 Nov 2026 09:00:00 +0900\r\n\r\nHello ${i}, I wanted to share the photos from the weekend trip with everyone, see the album at http://photos.example.net/album/${'x'} and tell me what you think.\r\n`);
    for (const u of ['c1', 'c2']) await newUser(f, u);
    await newUser(f, 'c3');
    assert.equal((await send(f, 'c1', body(1))).action, 'accept');
    assert.equal((await send(f, 'c2', body(2), T0 + 1000)).action, 'accept');
    const third = await send(f, 'c3', body(3), T0 + 2000);
    assert.equal(third.action, 'hold');
    const reason = third.reasons.find((x) => x.module === 'content')!;
    assert.equal(reason.rule, 'campaign');
    assert.equal(reason.figures?.campaignSenders, 3);
    assert.equal(third.pool, 'suspect');
    // The same sender again does not count twice; outside the window it is forgotten.
    assert.equal((await send(f, 'c1', body(4), T0 + 700_000)).action, 'accept');
    await f.close();
  });

  it('no content (policy door), content disabled, routing disabled', async () => {
    const f = fixture(routed());
    await newUser(f, 'n');
    const v = await send(f, 'n', null);
    assert.equal(v.pool, undefined);
    await f.close();
    const g = fixture({ ...routed(), content: { enabled: false } });
    await newUser(g, 'n');
    const w = await send(g, 'n', SPAM);
    assert.equal(w.pool, 'clean');
    assert.equal(w.reasons.some((x) => x.module === 'content'), false);
    await g.close();
    const h = fixture();
    const x = await send(h, 'n', SPAM);
    assert.equal(x.pool, undefined);
    assert.equal(x.reasons.find((r) => r.module === 'content')?.rule, 'spam-score');
    await h.close();
  });
});

describe('campaign tracker', () => {
  it('counts distinct senders per fingerprint within the window and expires old ones', () => {
    const t = new CampaignTracker(2);
    const at = (s: string, sec: number, fps: string[]) => t.observe({ sender: senderId(s), now: sec * 1000, windowSeconds: 60, fingerprints: fps }).senders;
    assert.deepEqual(at('a', 0, ['x', 'y']), [1, 1]);
    assert.deepEqual(at('b', 10, ['x']), [2]);
    assert.deepEqual(at('a', 20, ['x']), [2]);
    assert.deepEqual(at('c', 75, ['x']), [2], 'b (seen at 10) left the window; a (20) and c remain');
    assert.deepEqual(at('d', 76, ['z', 'w']), [1, 1]);
    assert.equal(t.size, 2, 'at most maxFingerprints kept');
  });
});
