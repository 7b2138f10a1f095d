import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SenderId } from '../../src/engine/types.ts';
import type { CounterLayout, CounterStore, ObserveRequest, Place, SenderSnapshot } from '../../src/store/counter-store.ts';

// The CounterStore conformance suite: every implementation (embedded memory, Redis)
// must pass the same cases, with the embedded store's exact semantics
// (src/store/memory/, docs/counting.md). Where an implementation may differ by design
// (HyperLogLog above the exact threshold, float precision of the baseline), the
// assertion states the allowed range and why.

export const LAYOUT: CounterLayout = { windows: [60, 3600], subBuckets: 10, breachWindow: 600, authFailureWindow: 3600, distinctWindows: [600, 3600], baselineTau: 7 * 86400 };
const LIMITS = [
  { messages: 5, recipients: 50 },
  { messages: 20, recipients: 200 },
];

export interface CounterStoreHandle {
  readonly store: CounterStore;
  /** Deletes what the store wrote (keys, files). */
  cleanup(): Promise<void>;
}

let n = 0;
/** A fresh sender ID per case, so cases never share state. */
const fresh = (label: string): SenderId => `${label}-${process.pid}-${++n}@example.jp` as SenderId;
// Times near the wall clock, so size() (which looks at recent activity) sees them.
const T = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 2 * 3_600_000;

function msg(sender: SenderId, now: number, extra: Partial<ObserveRequest> = {}): ObserveRequest {
  return { sender, now, ip: '126.0.0.1', stage: 'message', limits: LIMITS, messages: 1, recipients: 1, ...extra };
}
function rcpt(sender: SenderId, now: number, extra: Partial<ObserveRequest> = {}): ObserveRequest {
  return { sender, now, ip: '126.0.0.1', stage: 'rcpt', limits: LIMITS, messages: 1, recipients: 1, ...extra };
}
function auth(sender: SenderId, now: number, ok: boolean, ip: string, place: Place | null = null): ObserveRequest {
  return { sender, now, ip, stage: 'auth', authOk: ok, limits: LIMITS, messages: 0, recipients: 0, place };
}
const JP: Place = { country: 'JP', lat: 35.68, lon: 139.77 };
const US: Place = { country: 'US', lat: 37.77, lon: -122.42 };
const INTERNAL: Place = { country: '--', lat: NaN, lon: NaN };

export function counterStoreSuite(name: string, open: (layout: CounterLayout) => Promise<CounterStoreHandle>, opts: { skip?: string | false; hllThreshold?: number } = {}): void {
  describe(`CounterStore conformance: ${name}`, { skip: opts.skip ?? false }, () => {
    let h: CounterStoreHandle;
    let s: CounterStore;
    before(async () => {
      h = await open(LAYOUT);
      s = h.store;
    });
    after(async () => {
      await h?.cleanup();
    });
    const seq = async (reqs: readonly ObserveRequest[]): Promise<SenderSnapshot[]> => {
      const out: SenderSnapshot[] = [];
      for (const r of reqs) out.push(await s.observe(r));
      return out;
    };

    it('limit N admits exactly N messages and refuses the next without adding', async () => {
      const a = fresh('limit');
      for (let i = 0; i < 5; i++) assert.equal((await s.observe(msg(a, T + i * 1000, { recipients: 3 }))).admitted, true);
      const refused = await s.observe(msg(a, T + 10_000));
      assert.equal(refused.admitted, false);
      assert.deepEqual(refused.exceeded, { window: 60, series: 'messages', count: 5, limit: 5 });
      assert.deepEqual(refused.windows, [{ messages: 5, recipients: 15 }, { messages: 5, recipients: 15 }]);
      assert.equal(refused.breaches, 1);
      // rcpt tests without adding; a refused first RCPT is a breach too.
      const r = await s.observe(rcpt(a, T + 11_000));
      assert.equal(r.admitted, false);
      assert.equal(r.breaches, 2);
      // Later recipients of a refused transaction (messages 0) are not breaches again.
      assert.equal((await s.observe(rcpt(a, T + 11_500, { messages: 0, recipients: 2 }))).breaches, 2);
      // Nor are they when none was admitted (each still tests the message): one transaction, one refusal.
      const tx = [true, false, false, false].map((firstRcpt) => rcpt(a, T + 12_000, { ip: '126.0.5.1', firstRcpt }));
      const out = await seq(tx);
      assert.deepEqual(out.map((o) => [o.admitted, o.breaches]), [[false, 3], [false, 3], [false, 3], [false, 3]]);
      assert.equal((await s.sourceIps(a, T + 12_000)).find((x) => x.ip === '126.0.5.1')?.count, 1, 'the address is recorded once per transaction');
    });

    it('N concurrent attempts at the last free places: exactly the limit is admitted', async () => {
      const a = fresh('race');
      const res = await Promise.all(Array.from({ length: 30 }, (_, i) => s.observe(msg(a, T + 1000 + (i % 3)))));
      assert.equal(res.filter((r) => r.admitted).length, 5);
      assert.equal((await s.peek(a, T + 2000)).windows[0]!.messages, 5);
    });

    it('recipients have their own limit; the message is tested at its first recipient only', async () => {
      const a = fresh('rcpts');
      assert.equal((await s.observe(msg(a, T, { recipients: 45 }))).admitted, true);
      const over = await s.observe(rcpt(a, T + 1000, { messages: 0, recipients: 6 }));
      assert.deepEqual(over.exceeded, { window: 60, series: 'recipients', count: 45, limit: 50 });
      assert.equal((await s.observe(rcpt(a, T + 1000, { messages: 1, recipients: 5 }))).admitted, true);
    });

    it('the window slides in sub-buckets: an event counts for at least the window, at most window + one bucket', async () => {
      const a = fresh('slide');
      for (let i = 0; i < 5; i++) await s.observe(msg(a, T + i));
      // 59 s later: still counted. The minute window's bucket is 6 s: gone after 66 s.
      assert.equal((await s.observe(msg(a, T + 59_000))).admitted, false);
      assert.equal((await s.peek(a, T + 60_500)).windows[0]!.messages, 5);
      assert.equal((await s.peek(a, T + 66_000)).windows[0]!.messages, 0);
      const again = await s.observe(msg(a, T + 66_000));
      assert.equal(again.admitted, true);
      assert.deepEqual(again.windows, [{ messages: 1, recipients: 1 }, { messages: 6, recipients: 6 }]);
    });

    it('a clock that goes backwards counts into the newest bucket and corrupts nothing', async () => {
      const a = fresh('clock');
      await s.observe(msg(a, T + 30_000));
      await s.observe(msg(a, T + 1_000));
      const snap = await s.observe(msg(a, T + 31_000));
      assert.deepEqual(snap.windows[0], { messages: 3, recipients: 3 });
      assert.deepEqual((await s.peek(a, T + 31_000 + 66_000)).windows[0], { messages: 0, recipients: 0 });
    });

    it('cells are 16-bit and saturate (never wrap)', async () => {
      const a = fresh('sat');
      const big = await s.observe(msg(a, T, { limits: [], recipients: 70_000 }));
      assert.equal(big.windows[0]!.recipients, 70_000);
      assert.equal((await s.peek(a, T + 1000)).windows[0]!.recipients, 65_535);
      assert.equal((await s.observe(msg(a, T + 1000, { limits: [], recipients: 10 }))).windows[0]!.recipients, 65_535 + 10);
      assert.equal((await s.peek(a, T + 1000)).windows[0]!.recipients, 65_535);
    });

    it('peek reads without moving anything; an unknown sender reads zero', async () => {
      const a = fresh('peek');
      await s.observe(msg(a, T));
      assert.deepEqual((await s.peek(a, T + 59_000)).windows, [{ messages: 1, recipients: 1 }, { messages: 1, recipients: 1 }]);
      assert.deepEqual((await s.peek(a, T + 3_600_000 + 360_000)).windows, [{ messages: 0, recipients: 0 }, { messages: 0, recipients: 0 }]);
      const none = await s.peek(fresh('nobody'), T);
      assert.deepEqual(none, { windows: [{ messages: 0, recipients: 0 }, { messages: 0, recipients: 0 }], distinctIps: [0, 0], distinctCountries: [0, 0], suspended: false });
    });

    it('failed logins are counted before the event, and their addresses are not noted', async () => {
      const a = fresh('auth');
      const snaps = await seq([auth(a, T, false, '203.0.113.1'), auth(a, T + 1000, false, '203.0.113.2'), auth(a, T + 2000, true, '126.0.0.9')]);
      assert.deepEqual(snaps.map((x) => x.authFailures), [0, 1, 2]);
      assert.deepEqual(snaps.map((x) => x.distinctIps[0]), [0, 0, 1]);
      assert.equal(snaps[2]!.admitted, true);
      assert.deepEqual((await s.sourceIps(a, T + 3000)).map((x) => x.ip), ['126.0.0.9']);
    });

    it('distinct IPs and countries per window; "--" is stored but not a country', async () => {
      const a = fresh('distinct');
      await s.observe(rcpt(a, T, { ip: '126.0.0.1', place: JP }));
      await s.observe(rcpt(a, T + 1000, { ip: '8.8.8.8', place: US }));
      await s.observe(rcpt(a, T + 2000, { ip: '10.0.0.1', place: INTERNAL }));
      // A later recipient of the same transaction (messages 0) does not note its address.
      const later = await s.observe(rcpt(a, T + 3000, { ip: '192.0.2.7', messages: 0 }));
      assert.deepEqual(later.distinctIps, [3, 3]);
      assert.deepEqual(later.distinctCountries, [2, 2]);
      // 11 minutes on: the 10-minute window is empty, the hour still has them.
      const p = await s.peek(a, T + 2000 + 601_000);
      assert.deepEqual(p.distinctIps, [0, 3]);
      assert.deepEqual(p.distinctCountries, [0, 2]);
      // An address seen again without a place keeps its country and counts it as seen now.
      const again = await s.observe(rcpt(a, T + 700_000, { ip: '8.8.8.8', place: null }));
      assert.deepEqual(again.distinctIps, [1, 3]);
      assert.deepEqual(again.distinctCountries, [1, 2]);
      const ips = await s.sourceIps(a, T + 700_000);
      assert.deepEqual(
        ips.map((x) => [x.ip, x.country, x.count, x.firstSeen, x.lastSeen]),
        [
          ['8.8.8.8', 'US', 2, T + 1000, T + 700_000],
          ['10.0.0.1', '--', 1, T + 2000, T + 2000],
          ['126.0.0.1', 'JP', 1, T, T],
        ],
      );
    });

    it('distinct source networks (/24, /48) per window and when this address\'s network was first seen', async (t) => {
      type WithPrefixes = SenderSnapshot & { distinctPrefixes?: readonly number[]; prefixFirstSeen?: number | null };
      const a = fresh('prefix');
      const first = (await s.observe(rcpt(a, T, { ip: '126.0.0.1' }))) as WithPrefixes;
      if (first.distinctPrefixes === undefined) return t.skip('this interface version has no source networks');
      assert.deepEqual(first.distinctPrefixes, [1, 1]);
      assert.equal(first.prefixFirstSeen, T);
      const same = (await s.observe(rcpt(a, T + 1000, { ip: '126.0.0.2' }))) as WithPrefixes;
      assert.deepEqual([same.distinctIps, same.distinctPrefixes, same.prefixFirstSeen], [[2, 2], [1, 1], T]);
      const other = (await s.observe(rcpt(a, T + 2000, { ip: '8.8.8.8' }))) as WithPrefixes;
      assert.deepEqual([other.distinctPrefixes, other.prefixFirstSeen], [[2, 2], T + 2000]);
      const v6 = (await s.observe(rcpt(a, T + 3000, { ip: '2001:db8:1:2::5' }))) as WithPrefixes;
      assert.deepEqual([v6.distinctPrefixes, v6.prefixFirstSeen], [[3, 3], T + 3000]);
      // A failed login records nothing: an unknown network has no first-seen time, a known one keeps its own.
      assert.equal(((await s.observe(auth(a, T + 4000, false, '203.0.113.5'))) as WithPrefixes).prefixFirstSeen, null);
      assert.equal(((await s.observe(auth(a, T + 4000, false, '126.0.0.77'))) as WithPrefixes).prefixFirstSeen, T);
      assert.equal(((await s.observe(msg(a, T + 4000, { ip: null }))) as WithPrefixes).prefixFirstSeen, null);
      // 11 minutes on: the 10-minute window is empty, the hour still has three networks.
      const later = (await s.observe(rcpt(a, T + 3000 + 601_000, { ip: '126.0.0.1', messages: 0 }))) as WithPrefixes;
      assert.deepEqual([later.distinctPrefixes, later.prefixFirstSeen], [[0, 3], T]);
    });

    it('networks: IPv6 addresses in one /48 are one network, an IPv4-mapped address is its IPv4 /24; first-seen is the network\'s earliest address', async () => {
      const a = fresh('prefix6');
      await s.observe(rcpt(a, T, { ip: '126.0.0.1' }));
      const v4b = await s.observe(rcpt(a, T + 5000, { ip: '126.0.0.200' }));
      assert.deepEqual([v4b.distinctIps, v4b.distinctPrefixes, v4b.prefixFirstSeen], [[2, 2], [1, 1], T]);
      await s.observe(rcpt(a, T + 20_000, { ip: '2001:db8:1:2::1' }));
      const v6b = await s.observe(rcpt(a, T + 30_000, { ip: '2001:db8:1:ffff::9' }));
      assert.deepEqual([v6b.distinctIps, v6b.distinctPrefixes, v6b.prefixFirstSeen], [[4, 4], [2, 2], T + 20_000]);
      const mapped = await s.observe(rcpt(a, T + 40_000, { ip: '::ffff:126.0.0.7' }));
      assert.deepEqual([mapped.distinctPrefixes, mapped.prefixFirstSeen], [[2, 2], T]);
      // A later recipient of a transaction (messages 0) from a known network reads its time.
      assert.equal((await s.observe(rcpt(a, T + 50_000, { ip: '2001:db8:1:7::7', messages: 0 }))).prefixFirstSeen, T + 20_000);
    });

    it('the previous place is the latest other address with a known place', async () => {
      const a = fresh('travel');
      const first = await s.observe(auth(a, T, true, '126.0.0.1', JP));
      assert.equal(first.previous, null);
      await s.observe(auth(a, T + 1000, true, '192.0.2.1', null)); // no place: never a "previous place"
      const second = await s.observe(auth(a, T + 60_000, true, '8.8.8.8', US));
      assert.deepEqual(second.previous, { ip: '126.0.0.1', place: JP, t: T });
      const third = await s.observe(auth(a, T + 120_000, true, '126.0.0.1', JP));
      assert.deepEqual(third.previous, { ip: '8.8.8.8', place: US, t: T + 60_000 });
      // Without a place for the event, no previous place is looked up.
      assert.equal((await s.observe(auth(a, T + 130_000, true, '8.8.8.8', null))).previous, null);
    });

    it('the baseline is an EWMA of admitted messages per hour; history counts from the first event', async () => {
      const a = fresh('base');
      const snaps: SenderSnapshot[] = [];
      for (let i = 0; i < 10; i++) snaps.push(await s.observe(msg(a, T + i * 600_000, { limits: [] })));
      assert.equal(snaps[0]!.baselinePerHour, 0);
      assert.equal(snaps[9]!.historySeconds, 5400);
      // Float32 (embedded) vs double (Redis): equal to 6 significant digits.
      const tau = LAYOUT.baselineTau;
      let v = 0;
      let t = 0;
      for (let i = 0; i < 9; i++) {
        const now = i * 600;
        v = v * Math.exp(-(now - t) / tau) + 1;
        t = now;
      }
      const expected = ((v * Math.exp(-(5400 - t) / tau)) / tau) * 3600;
      assert.ok(Math.abs(snaps[9]!.baselinePerHour - expected) / expected < 1e-6, `${snaps[9]!.baselinePerHour} vs ${expected}`);
      // Refused messages do not feed the baseline.
      const refusedBefore = await s.observe(msg(a, T + 10 * 600_000, { limits: [{ messages: 0, recipients: 0 }] }));
      const after1 = await s.observe(msg(a, T + 10 * 600_000, { stage: 'auth', authOk: true, messages: 0, recipients: 0 }));
      assert.equal(refusedBefore.admitted, false);
      assert.ok(Math.abs(after1.baselinePerHour - refusedBefore.baselinePerHour) < 1e-9);
    });

    it('the suspended flag refuses everything and is cleared by release', async () => {
      const a = fresh('susp');
      await s.setSuspended(a, true);
      const r = await s.observe(msg(a, T));
      assert.equal(r.suspended, true);
      assert.equal(r.admitted, false);
      assert.equal(r.exceeded, null);
      assert.equal(r.windows[0]!.messages, 0);
      assert.equal((await s.observe(auth(a, T, true, '126.0.0.1'))).admitted, false);
      assert.equal((await s.peek(a, T)).suspended, true);
      await s.setSuspended(a, false);
      assert.equal((await s.observe(msg(a, T + 1000))).admitted, true);
      await s.setSuspended(fresh('never-seen'), false);
    });

    it('top: the IDs with most messages, recipients, source IPs and countries in a window', async () => {
      const x = fresh('topx');
      const y = fresh('topy');
      const now = T + 5_000_000;
      for (let i = 0; i < 3; i++) await s.observe(msg(x, now + i, { limits: [], recipients: 10 }));
      await s.observe(msg(y, now, { limits: [], recipients: 100 }));
      for (const [i, ip] of ['126.0.0.1', '8.8.8.8', '1.1.1.1', '9.9.9.9'].entries()) await s.observe(rcpt(y, now + i, { ip, place: i % 2 ? US : JP }));
      const mine = (e: readonly { sender: string; value: number }[]) => e.filter((v) => v.sender === x || v.sender === y).map((v) => [v.sender, v.value]);
      assert.deepEqual(mine(await s.top('messages', 3600, now + 10, 1000)), [[x, 3], [y, 1]]);
      assert.deepEqual(mine(await s.top('recipients', 3600, now + 10, 1000)), [[y, 100], [x, 30]]);
      // Message events do not note addresses (the first RCPT does): x has none.
      assert.deepEqual(mine(await s.top('source-ips', 3600, now + 10, 1000)), [[y, 4]]);
      assert.deepEqual(mine(await s.top('countries', 3600, now + 10, 1000)), [[y, 2]]);
      // Outside the window nothing is listed.
      assert.deepEqual(mine(await s.top('messages', 60, now + 3_600_000 * 3, 1000)), []);
    });

    it('distinct IPs stay exact while small and are estimated above the threshold (HyperLogLog)', async () => {
      const a = fresh('hll');
      const count = async (nIps: number): Promise<number> => {
        let last: SenderSnapshot | null = null;
        for (let i = 0; i < nIps; i++) last = await s.observe(rcpt(a, T + 7_200_000 + i, { ip: `198.18.${(i >> 8) & 255}.${i & 255}` }));
        return last!.distinctIps[1]!;
      };
      assert.equal(await count(10), 10);
      // 300 addresses in the hour: the embedded store keeps the 256 most recent (exact, capped);
      // the Redis store's estimate is within HyperLogLog's error (0.81% standard error; 3% allowed).
      const v = await count(300);
      assert.ok(v >= 256 && v <= 309, `distinct IPs ${v}`);
      assert.equal((await s.sourceIps(a, T + 7_200_000 + 300)).length, 256);
    });

    it('campaign fingerprints: distinct sender IDs per fingerprint in a sliding window', async () => {
      type Campaign = (q: { sender: SenderId; now: number; windowSeconds: number; fingerprints: readonly string[] }) => Promise<{ senders: readonly number[] }>;
      const observe = (s as unknown as { observeCampaign?: Campaign }).observeCampaign?.bind(s);
      if (!observe) return;
      const fp = `fp-${process.pid}-${++n}`;
      const fp2 = `${fp}-b`;
      const [a, b, c] = [fresh('camp'), fresh('camp'), fresh('camp')];
      assert.deepEqual(await observe({ sender: a, now: T, windowSeconds: 600, fingerprints: [fp] }), { senders: [1] });
      assert.deepEqual(await observe({ sender: b, now: T + 1000, windowSeconds: 600, fingerprints: [fp, fp2] }), { senders: [2, 1] });
      assert.deepEqual(await observe({ sender: a, now: T + 2000, windowSeconds: 600, fingerprints: [fp] }), { senders: [2] });
      // 600 s after b's message (a was seen again later): b has dropped out.
      assert.deepEqual(await observe({ sender: c, now: T + 601_000, windowSeconds: 600, fingerprints: [fp] }), { senders: [2] });
    });

    it('size counts tracked IDs', async () => {
      assert.ok((await s.size()) >= 10);
    });
  });
}
