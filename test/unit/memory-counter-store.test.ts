import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SenderId } from '../../src/engine/types.ts';
import type { CounterLayout, ObserveRequest } from '../../src/store/counter-store.ts';
import { MemoryCounterStore } from '../../src/store/memory/memory-counter-store.ts';

const LAYOUT: CounterLayout = { windows: [60, 3600], subBuckets: 10, breachWindow: 600, authFailureWindow: 3600, distinctWindows: [600, 3600], baselineTau: 7 * 86400 };
const T = Date.parse('2026-11-02T00:00:00Z');
const id = (s: string) => s as SenderId;
const LIMITS = [{ messages: 5, recipients: 50 }, { messages: 20, recipients: 200 }];
const msg = (sender: string, now: number, extra: Partial<ObserveRequest> = {}): ObserveRequest => ({ sender: id(sender), now, ip: '126.0.0.1', stage: 'message', limits: LIMITS, messages: 1, recipients: 1, ...extra });

describe('memory counter store', () => {
  it('counts messages and recipients per window and refuses without adding', () => {
    const s = new MemoryCounterStore(LAYOUT);
    for (let i = 0; i < 5; i++) assert.equal(s.observeSync(msg('a', T + i, { recipients: 3 })).admitted, true);
    const refused = s.observeSync(msg('a', T + 10));
    assert.equal(refused.admitted, false);
    assert.deepEqual(refused.exceeded, { window: 60, series: 'messages', count: 5, limit: 5 });
    assert.deepEqual(refused.windows, [{ messages: 5, recipients: 15 }, { messages: 5, recipients: 15 }]);
    assert.equal(refused.breaches, 1);
  });

  it('a clock that goes backwards counts into the newest bucket and corrupts nothing', () => {
    const s = new MemoryCounterStore(LAYOUT);
    s.observeSync(msg('b', T + 30_000));
    s.observeSync(msg('b', T + 1_000));
    const snap = s.observeSync(msg('b', T + 31_000));
    assert.deepEqual(snap.windows[0], { messages: 3, recipients: 3 });
    assert.deepEqual(s.peekSync(id('b'), T + 31_000 + 66_000).windows[0], { messages: 0, recipients: 0 });
  });

  it('peek reads what observe would see without moving anything', () => {
    const s = new MemoryCounterStore(LAYOUT);
    s.observeSync(msg('c', T));
    assert.deepEqual(s.peekSync(id('c'), T + 59_000).windows, [{ messages: 1, recipients: 1 }, { messages: 1, recipients: 1 }]);
    assert.deepEqual(s.peekSync(id('c'), T + 3_600_000 + 360_000).windows, [{ messages: 0, recipients: 0 }, { messages: 0, recipients: 0 }]);
    assert.deepEqual(s.peekSync(id('nobody'), T).windows, [{ messages: 0, recipients: 0 }, { messages: 0, recipients: 0 }]);
    assert.deepEqual(s.observeSync(msg('c', T + 59_000, { stage: 'rcpt', messages: 0, recipients: 0 })).windows[0], { messages: 1, recipients: 1 });
  });

  it('counts distinct addresses and countries per window, and knows the previous place', () => {
    const s = new MemoryCounterStore(LAYOUT);
    const rcpt = (ip: string, t: number, country: string, lat: number, lon: number) =>
      s.observeSync({ sender: id('d'), now: t, ip, stage: 'rcpt', limits: [], messages: 1, recipients: 1, place: { country, lat, lon } });
    assert.equal(rcpt('126.1.1.1', T, 'JP', 35.68, 139.69).previous, null);
    const second = rcpt('2001:db8::1', T + 60_000, 'US', 37.75, -97.82);
    assert.deepEqual(second.previous, { ip: '126.1.1.1', place: { country: 'JP', lat: 35.68, lon: 139.69 }, t: T });
    assert.deepEqual(second.distinctIps, [2, 2]);
    assert.deepEqual(second.distinctCountries, [2, 2]);
    const internal = rcpt('10.0.0.1', T + 120_000, '--', NaN, NaN);
    assert.deepEqual(internal.distinctIps, [3, 3]);
    assert.deepEqual(internal.distinctCountries, [2, 2], 'internal addresses are not a country');
    const later = rcpt('126.1.1.1', T + 1_800_000, 'JP', 35.68, 139.69);
    assert.deepEqual(later.distinctIps, [1, 3]);
    assert.deepEqual(later.distinctCountries, [1, 2]);
    const stats = new Map((s.sourceIpsSync(id('d'))).map((x) => [x.ip, x]));
    assert.equal(stats.get('126.1.1.1')?.count, 2);
    assert.equal(stats.get('2001:db8::1')?.country, 'US');
  });

  it('exports and imports its whole state; a changed layout starts empty', () => {
    const s = new MemoryCounterStore(LAYOUT, 2);
    for (let i = 0; i < 10; i++) s.observeSync(msg(`u${i}`, T + i, { ip: `126.0.0.${i + 1}` }));
    s.observeSync(msg('u1', T + 20, { ip: '2001:db8::2' }));
    void s.setSuspended(id('u3'), true);
    const data = s.exportState();
    const restored = new MemoryCounterStore(LAYOUT);
    assert.equal(restored.importState(structuredClone(data)), true);
    assert.deepEqual(restored.peekSync(id('u1'), T + 30), s.peekSync(id('u1'), T + 30));
    assert.equal(restored.peekSync(id('u3'), T + 30).suspended, true);
    assert.equal(restored.observeSync(msg('new', T + 40)).admitted, true);
    assert.equal(new MemoryCounterStore({ ...LAYOUT, subBuckets: 5 }).importState(data), false);
  });

  it('forgets idle senders but never suspended ones, and reuses their slots', () => {
    const s = new MemoryCounterStore(LAYOUT);
    s.observeSync(msg('idle', T));
    s.observeSync(msg('held', T));
    void s.setSuspended(id('held'), true);
    s.observeSync(msg('busy', T + 86_400_000));
    assert.equal(s.evictIdle(T + 86_400_000, 3600), 1);
    assert.deepEqual(s.peekSync(id('idle'), T).windows[0], { messages: 0, recipients: 0 });
    assert.equal(s.peekSync(id('held'), T).suspended, true);
    assert.equal(s.observeSync(msg('fresh', T + 86_400_000)).windows[0]!.messages, 1);
  });

  it('keeps source addresses and suspensions across export and import', () => {
    const s = new MemoryCounterStore(LAYOUT, 2);
    const rcpt = (sender: string, now: number, ip: string) => s.observeSync(msg(sender, now, { stage: 'rcpt', ip, place: { country: 'JP', lat: 35.7, lon: 139.7 } }));
    rcpt('two', T, '126.0.0.1');
    rcpt('two', T + 1000, '153.0.0.1');
    for (let i = 0; i < 5; i++) rcpt('many', T + i, `49.96.${i}.1`);
    rcpt('v6', T, '2001:db8::1');
    void s.setSuspended(id('two'), true);
    const restored = new MemoryCounterStore(LAYOUT);
    assert.equal(restored.importState(structuredClone(s.exportState())), true);
    for (const who of ['two', 'many', 'v6']) {
      assert.deepEqual(restored.sourceIpsSync(id(who)), s.sourceIpsSync(id(who)), who);
      assert.deepEqual(restored.peekSync(id(who), T + 2000), s.peekSync(id(who), T + 2000), who);
    }
    assert.equal(restored.peekSync(id('two'), T + 2000).suspended, true);
    const next = restored.observeSync(msg('two', T + 3000, { stage: 'rcpt', ip: '126.0.0.2', place: { country: 'US', lat: 37, lon: -97 } }));
    assert.equal(next.previous?.ip, '153.0.0.1');
    assert.deepEqual(next.distinctIps, [3, 3]);
    assert.deepEqual(next.distinctPrefixes, [2, 2], '126.0.0.2 is in the /24 of 126.0.0.1');
  });

  it('refusal and failed-login counts saturate instead of wrapping', () => {
    const s = new MemoryCounterStore(LAYOUT);
    let last = 0;
    for (let i = 0; i < 300; i++) last = s.observeSync({ sender: id('bf'), now: T, ip: '192.0.2.1', stage: 'auth', authOk: false, limits: [], messages: 0, recipients: 0 }).authFailures;
    assert.equal(last, 255);
  });
});
