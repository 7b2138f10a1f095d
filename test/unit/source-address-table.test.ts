import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Place } from '../../src/store/counter-store.ts';
import { Rng } from '../../src/sim/prng.ts';
import { sourcePrefix } from '../../src/store/source-prefix.ts';
import { AddressList, type ScanOutput } from '../../src/store/memory/address-list.ts';
import { MAX_ADDRESSES, networkKey, SourceAddressTable } from '../../src/store/memory/source-address-table.ts';

// The table keeps up to two IPv4 addresses inline and moves to a map at the third (or at
// an IPv6 address). Whatever the representation, its figures must equal a plain count over
// every address recorded: checked here against a naive model on random sequences.

interface Seen {
  ip: string;
  first: number;
  last: number;
  count: number;
  country: string | null;
  lat: number;
}

const WINDOWS = [600, 3600, 86400];

/** A seeded generator (the simulator's), so a failure can be replayed. */
function rng(seed: number): () => number {
  const r = new Rng('source-address-table', seed);
  return () => r.float();
}

const POOL = ['126.1.2.3', '126.1.2.4', '126.1.9.1', '49.96.0.7', '2001:db8:1:2::5', '::ffff:126.1.2.9', '10.0.0.1'];
const PLACES: (Place | null)[] = [null, { country: 'JP', lat: 35.68, lon: 139.69 }, { country: 'US', lat: 37.75, lon: -97.82 }, { country: '--', lat: NaN, lon: NaN }];

function model(seen: Seen[], nowSec: number, ip: string | null) {
  const mine = ip === null ? null : sourcePrefix(ip);
  const per = WINDOWS.map((w) => {
    const recent = seen.filter((s) => s.last > nowSec - w);
    return {
      ips: recent.length,
      countries: new Set(recent.map((s) => s.country).filter((c) => c !== null && c !== '--')).size,
      nets: new Set(recent.map((s) => sourcePrefix(s.ip))).size,
    };
  });
  const sameNet = seen.filter((s) => mine !== null && sourcePrefix(s.ip) === mine);
  const prefixFirst = sameNet.length === 0 ? 0 : Math.min(...sameNet.map((s) => s.first));
  let previous: Seen | null = null;
  for (const s of seen) if (s.ip !== ip && s.country !== null && (previous === null || s.last >= previous.last)) previous = s;
  return { per, prefixFirst, previous };
}

function assertFigures(f: ScanOutput, m: ReturnType<typeof model>, ctx: string): void {
  assert.deepEqual(f.distinctIps, m.per.map((x) => x.ips), ctx);
  assert.deepEqual(f.distinctCountries, m.per.map((x) => x.countries), ctx);
  assert.deepEqual(f.distinctPrefixes, m.per.map((x) => x.nets), ctx);
  assert.equal(f.prefixFirst, m.prefixFirst, ctx);
  assert.equal(f.previousIp, m.previous?.ip ?? null, ctx);
}

describe('source address table', () => {
  it('gives the same figures as a plain count, inline and in the map', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const r = rng(seed);
      const table = new SourceAddressTable();
      table.grow(4);
      const seen: Seen[] = [];
      let now = 1_800_000_000;
      const steps = 1 + Math.floor(r() * 8);
      // Mostly IPv4 from the first four, so many sequences stay inline.
      const pool = r() < 0.5 ? POOL.slice(0, 4) : POOL;
      for (let i = 0; i < steps; i++) {
        now += Math.floor(r() * 4000);
        const ip = pool[Math.floor(r() * pool.length)]!;
        const place = PLACES[Math.floor(r() * PLACES.length)]!;
        const evicted = table.note(2, ip, now, place);
        assert.equal(evicted, null);
        let s = seen.find((x) => x.ip === ip);
        if (!s) seen.push((s = { ip, first: now, last: now, count: 0, country: null, lat: NaN }));
        s.count++;
        s.last = now;
        if (place) {
          s.country = place.country;
          s.lat = place.lat;
        }
        const probe = r() < 0.2 ? null : pool[Math.floor(r() * pool.length)]!;
        const at = now + Math.floor(r() * 5000);
        const f = table.figures(2, at, probe, WINDOWS, true);
        const m = model(seen, at, probe);
        const ctx = `seed ${seed}, step ${i}`;
        assertFigures(f, m, ctx);
        if (m.previous !== null && Number.isFinite(m.previous.lat)) assert.equal(f.previous!.lat, Math.round(m.previous.lat * 100), ctx);
      }
      const listed = table.list(2);
      assert.deepEqual(
        listed.map((x) => [x.ip, x.count, x.firstSeen / 1000]).sort(),
        seen.map((x) => [x.ip, x.count, x.first]).sort(),
        `seed ${seed}: list`,
      );
      // Neighbouring slots are untouched.
      assert.deepEqual(table.list(1), []);
      assert.deepEqual(table.list(3), []);
    }
  });

  it('keeps two IPv4 addresses without a map and survives export and import', () => {
    const a = new SourceAddressTable();
    a.grow(2);
    a.note(0, '126.1.2.3', 100, { country: 'JP', lat: 35, lon: 139 });
    a.note(0, '153.1.2.3', 200, null);
    a.note(1, '2001:db8::1', 300, null);
    const data = a.exportState(2);
    assert.deepEqual(data.mapped.map(([slot]) => slot), [1], 'only the IPv6 sender has a map');
    const b = new SourceAddressTable();
    b.grow(2);
    b.importState(data);
    assert.deepEqual(b.list(0), a.list(0));
    assert.deepEqual(b.list(1), a.list(1));
    assert.equal(b.figures(1, 300, '2001:db8::2', WINDOWS, false).prefixFirst, 300);
  });

  it('forgets the least recently seen address beyond its cap and offers it as the previous place', () => {
    const t = new SourceAddressTable();
    t.grow(1);
    t.note(0, '126.0.0.1', 1, { country: 'JP', lat: 35, lon: 139 });
    for (let i = 1; i < MAX_ADDRESSES; i++) t.note(0, `10.${i >> 8}.${i & 255}.1`, 1 + i, null);
    t.note(0, '126.0.0.1', 5000, { country: 'JP', lat: 35, lon: 139 }); // now the most recent
    const evicted = t.note(0, '192.0.2.1', 5001, null);
    assert.equal(evicted?.[0], '10.0.1.1', 'the oldest other address goes');
    assert.equal(t.list(0).length, MAX_ADDRESSES);
    const lone = new SourceAddressTable();
    lone.grow(1);
    const f = lone.figures(0, 10, '192.0.2.1', WINDOWS, true, ['203.0.113.9', { count: 1, first: 1, last: 2, country: 0x4a50, lat: 3500, lon: 13900, net: 0 }]);
    assert.equal(f.previousIp, '203.0.113.9');
  });

  it('an address list at its cap forgets the least recently seen address and keeps its network figures exact', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = rng(seed);
      const list = new AddressList(3);
      let seen: Seen[] = [];
      let now = 1_800_000_000;
      for (let i = 0; i < 12; i++) {
        now += 1 + Math.floor(r() * 3000); // strictly increasing: the least recent is unambiguous
        const ip = POOL[Math.floor(r() * POOL.length)]!;
        const place = PLACES[Math.floor(r() * PLACES.length)]!;
        const cc = place && place.country.length === 2 ? (place.country.charCodeAt(0) << 8) | place.country.charCodeAt(1) : 0;
        let s = seen.find((x) => x.ip === ip);
        if (list.touch(ip, now, cc, 0, 0, place !== null)) {
          assert.ok(s, `seed ${seed}: touched an address the model does not have`);
        } else {
          assert.equal(s, undefined, `seed ${seed}: the list lost ${ip}`);
          const evicted = list.add(ip, { count: 0, first: now, last: now, country: cc, lat: 0, lon: 0, net: networkKey(ip) });
          if (seen.length === 3) {
            const oldest = seen.reduce((a, b) => (b.last < a.last ? b : a));
            assert.equal(evicted?.[0], oldest.ip, `seed ${seed}, step ${i}: evicted`);
            seen = seen.filter((x) => x !== oldest);
          } else assert.equal(evicted, null);
          seen.push((s = { ip, first: now, last: now, count: 0, country: null, lat: NaN }));
        }
        s!.last = now;
        if (place) s!.country = place.country;
        const probe = POOL[Math.floor(r() * POOL.length)]!;
        const at = now + Math.floor(r() * 5000);
        const out = list.scan(at, probe, networkKey(probe), WINDOWS, true);
        assert.deepEqual(list.scan(at, probe, networkKey(probe), WINDOWS, true), out, 'the same question, unchanged list: the same answer');
        const m = model(seen, at, probe);
        const ctx = `seed ${seed}, step ${i}`;
        assertFigures(out, m, ctx);
      }
    }
  });

  it('a long list answers a repeated question from its last scan until it changes', () => {
    const list = new AddressList(MAX_ADDRESSES);
    for (let i = 0; i < 40; i++) list.add(`198.51.${i}.7`, { count: 1, first: 100 + i, last: 100 + i, country: 0x4a50, lat: 0, lon: 0, net: networkKey(`198.51.${i}.7`) });
    const a = list.scan(200, '198.51.3.7', networkKey('198.51.3.7'), WINDOWS, true);
    assert.equal(list.scan(200, '198.51.3.7', networkKey('198.51.3.7'), WINDOWS, true), a, 'unchanged: the same answer object');
    assert.deepEqual(a.distinctIps, [40, 40, 40]);
    list.touch('198.51.3.7', 200, 0x4a50, 0, 0, true);
    const b = list.scan(200, '198.51.3.7', networkKey('198.51.3.7'), WINDOWS, true);
    assert.notEqual(b, a, 'changed: scanned again');
    assert.equal(b.previousIp, '198.51.39.7');
    assert.notEqual(list.scan(201, '198.51.3.7', networkKey('198.51.3.7'), WINDOWS, true), b, 'another second: scanned again');
  });
});
