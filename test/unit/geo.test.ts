import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { configFromObject } from '../../src/config/load.ts';
import { centroid, centroidCount, distanceKm } from '../../src/geo/centroids.ts';
import { bundledCountryDatabase, CountryDatabase, placeOfRecord } from '../../src/geo/country-db.ts';
import { CidrSet, parseIp, specialUse } from '../../src/geo/ip.ts';
import { GeoSourceResolver } from '../../src/geo/source-resolver.ts';
import { addressesIn } from './source-fixture.ts';

// The country lookup itself: address parsing, special-use ranges, the shipped database,
// centroids, the lookup cost, and hot reload of the database file.

const require = createRequire(import.meta.url);

describe('geo: addresses', () => {
  it('parses IPv4, IPv6, IPv4-mapped and NAT64 addresses', () => {
    assert.deepEqual(parseIp('126.1.2.3'), { v: 4, n: 0x7e010203, text: '126.1.2.3' });
    assert.deepEqual(parseIp('::ffff:126.1.2.3'), { v: 4, n: 0x7e010203, text: '126.1.2.3' });
    assert.deepEqual(parseIp('64:ff9b::7e01:203'), { v: 4, n: 0x7e010203, text: '126.1.2.3' });
    assert.equal(parseIp('2001:db8::1')!.v, 6);
    assert.equal((parseIp('2001:db8::1') as { n: bigint }).n, (0x20010db8n << 96n) | 1n);
    assert.equal(parseIp('fe80::1%eth0')!.v, 6);
    for (const bad of ['', 'x', '1.2.3', '256.1.1.1', '1::2::3', 'unknown']) assert.equal(parseIp(bad), null, bad);
  });

  it('loopback, private and special-use ranges are internal, public addresses are not', () => {
    for (const ip of ['127.0.0.1', '10.9.9.9', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '169.254.1.1', '192.0.2.1', '198.51.100.7', '203.0.113.9', '198.18.0.1', '224.0.0.1', '::1', '::', 'fd12::1', 'fe80::1', '2001:db8::5']) {
      assert.notEqual(specialUse(parseIp(ip)!), null, ip);
    }
    for (const ip of ['126.1.2.3', '172.32.0.1', '100.128.0.1', '8.8.8.8', '2400:4050::1']) assert.equal(specialUse(parseIp(ip)!), null, ip);
  });

  it('CIDR sets match the most specific block, IPv4 and IPv6', () => {
    const s = new CidrSet();
    s.add('10.0.0.0/8', 'wide');
    s.add('10.1.0.0/16', 'narrow');
    s.add('2001:db8::/32');
    s.add('192.0.2.7');
    assert.equal(s.match(parseIp('10.1.2.3')!), 'narrow');
    assert.equal(s.match(parseIp('10.2.2.3')!), 'wide');
    assert.equal(s.match(parseIp('2001:db8:1::1')!), '2001:db8::/32');
    assert.equal(s.match(parseIp('192.0.2.7')!), '192.0.2.7');
    assert.equal(s.match(parseIp('192.0.2.8')!), null);
    assert.throws(() => s.add('10.0.0.0/33'), /prefix length/);
    assert.throws(() => s.add('example.com/8'), /not an address/);
  });
});

describe('geo: the shipped country database', () => {
  const db = new CountryDatabase(bundledCountryDatabase());

  it('is the CC BY 4.0 geo-whois-asn-country database, IPv4 and IPv6, without coordinates', () => {
    assert.match(db.info.file, /geo-whois-asn-country\.mmdb$/);
    assert.equal(db.info.coordinates, false);
    assert.ok(db.info.builtAt > Date.parse('2024-01-01'), new Date(db.info.builtAt).toISOString());
  });

  it('answers addresses picked from it, and "ZZ" for addresses it does not know', () => {
    for (const cc of ['JP', 'US', 'CN', 'BR', 'DE', 'KR']) {
      for (const ip of addressesIn(cc, 3)) assert.equal(db.lookup(parseIp(ip)!).country, cc, ip);
    }
    // 3fff::/20 is a documentation prefix (RFC 9637) not in the special-use table: unknown.
    assert.equal(db.lookup(parseIp('3fff::1')!).country, 'ZZ');
    const jp = db.lookup(parseIp(addressesIn('JP', 1)[0]!)!);
    assert.deepEqual([jp.lat, jp.lon], [...centroid('JP')!], 'a country-only database places an address at its country centroid');
  });

  it('looks an address up in about a microsecond (no effect on the policy server latency)', () => {
    const ips: ReturnType<typeof parseIp>[] = [];
    for (let i = 0; i < 100_000; i++) ips.push(parseIp(`${1 + ((i * 7919) % 222)}.${i % 256}.${(i * 31) % 256}.${(i * 17) % 256}`));
    for (const p of ips.slice(0, 10_000)) db.lookup(p!);
    const t0 = process.hrtime.bigint();
    let known = 0;
    for (const p of ips) if (db.lookup(p!).country !== 'ZZ') known++;
    const perLookupUs = Number(process.hrtime.bigint() - t0) / 1000 / ips.length;
    process.stdout.write(`# country lookup: ${perLookupUs.toFixed(2)} µs per lookup (${ips.length} addresses, ${known} known)\n`);
    assert.ok(perLookupUs < 50, `${perLookupUs} µs per lookup`);
  });

  it('reads the record shapes of MaxMind Country/City and ip-location-db files', () => {
    // GeoIP2/GeoLite2 City: coordinates of the place, not of the country.
    assert.deepEqual(placeOfRecord({ country: { iso_code: 'JP' }, registered_country: { iso_code: 'JP' }, location: { latitude: 43.06, longitude: 141.35, accuracy_radius: 50 } }), { country: 'JP', lat: 43.06, lon: 141.35 });
    // GeoIP2 Country: no coordinates, the centroid; registered_country when country is absent.
    assert.deepEqual(placeOfRecord({ registered_country: { iso_code: 'US' } }), { country: 'US', lat: centroid('US')![0], lon: centroid('US')![1] });
    // ip-location-db city files: flat fields.
    assert.deepEqual(placeOfRecord({ country_code: 'KR', city: 'Seoul', latitude: 37.57, longitude: 126.98 }), { country: 'KR', lat: 37.57, lon: 126.98 });
    assert.equal(placeOfRecord({ continent: { code: 'EU' } }), null);
    assert.equal(placeOfRecord(null), null);
  });

  it('has a centroid for every country code it answers', () => {
    assert.ok(centroidCount() >= 240);
    for (const cc of ['JP', 'US', 'BR', 'ZA', 'NZ', 'FJ', 'IS']) assert.ok(centroid(cc), cc);
    assert.equal(centroid('--'), null);
    assert.equal(centroid('ZZ'), null);
    // Tokyo–Osaka ≈ 400 km; Tokyo–New York ≈ 10,850 km.
    assert.ok(Math.abs(distanceKm(35.68, 139.69, 34.69, 135.5) - 400) < 20);
    assert.ok(Math.abs(distanceKm(35.68, 139.69, 40.71, -74.01) - 10_850) < 100);
  });
});

describe('geo: reloading the database file', () => {
  it('follows a file replaced on disk (rename over it), and keeps the old one when the new one is broken', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fumidai-geo-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'country.mmdb');
    copyFileSync(bundledCountryDatabase(), file);
    const logs: string[] = [];
    const r = new GeoSourceResolver(configFromObject({ source: { geo: { database: file } } }), { watch: true, log: (m) => logs.push(m) });
    after(() => r.close());
    const v6 = '2400:4050::1';
    assert.equal((await r.resolve(v6, 'rcpt')).place.country, 'JP');
    // The package's IPv4-only file: after the swap the IPv6 address is unknown.
    const v4only = require.resolve('@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country-ipv4.mmdb');
    copyFileSync(v4only, join(dir, 'country.mmdb.tmp'));
    renameSync(join(dir, 'country.mmdb.tmp'), file);
    for (let i = 0; i < 60 && !logs.some((l) => l.includes('reloaded')); i++) await sleep(50);
    assert.ok(logs.some((l) => /country database reloaded/.test(l)), logs.join('\n'));
    assert.equal((await r.resolve(v6, 'rcpt')).place.country, 'ZZ');
    assert.equal((await r.resolve(addressesIn('JP', 1)[0]!, 'rcpt')).place.country, 'JP');
    // A half-written file: the old database stays in use.
    writeFileSync(file, 'not a database');
    for (let i = 0; i < 60 && !logs.some((l) => l.includes('NOT reloaded')); i++) await sleep(50);
    assert.ok(logs.some((l) => /NOT reloaded, the previous one stays in use/.test(l)), logs.join('\n'));
    assert.equal((await r.resolve(addressesIn('JP', 1)[0]!, 'rcpt')).place.country, 'JP');
  });

  it('refuses to start with a missing or unusable database, naming the setting', () => {
    assert.throws(() => new GeoSourceResolver(configFromObject({ source: { geo: { database: '/nonexistent/x.mmdb' } } })), /source\.geo\.database: .*ENOENT/);
    const dir = mkdtempSync(join(tmpdir(), 'fumidai-geo-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'x.mmdb'), 'garbage');
    assert.throws(() => new GeoSourceResolver(configFromObject({ source: { geo: { database: join(dir, 'x.mmdb') } } })), /source\.geo\.database: .*not a MaxMind-format/);
  });
});
