import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DnsblClient, dnsblName } from '../../src/geo/dnsbl.ts';
import { parseIp } from '../../src/geo/ip.ts';
import { startDnsServer, type DnsServer } from '../support/dns-server.ts';
import { addressesIn, sourceFixture } from './source-fixture.ts';

// DNS blocklists against a real DNS exchange: a UDP responder on loopback that this test
// runs (test/support/dns-server.ts). Nothing leaves the machine.

const ZONE = 'bl.fumidai-test.invalid';

describe('DNS blocklist lookups (loopback DNS server)', () => {
  let dns: DnsServer;
  before(async () => {
    dns = await startDnsServer();
  });
  after(() => dns.close());

  const client = (over: Partial<ConstructorParameters<typeof DnsblClient>[0]> = {}, now?: () => number): DnsblClient =>
    new DnsblClient({
      zones: [{ zone: ZONE, codes: ['127.0.0.2', '127.0.0.4'], action: 'reject' }],
      resolvers: [dns.address],
      timeoutMs: 300,
      cacheTtlMs: 60_000,
      negativeTtlMs: 30_000,
      errorTtlMs: 5_000,
      cacheSize: 1000,
      ...(now ? { now } : {}),
      ...over,
    });

  it('builds query names by reversed octets and nibbles', () => {
    assert.equal(dnsblName(parseIp('192.0.2.1')!, 'x.example'), '1.2.0.192.x.example');
    assert.equal(
      dnsblName(parseIp('2001:db8::1')!, 'x.example'),
      '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.x.example',
    );
  });

  it('reports a listed address with its code, an unlisted one as clean, and caches both', async () => {
    const c = client();
    dns.set(`9.0.0.198.${ZONE}`, ['127.0.0.4']);
    dns.set(`8.0.0.198.${ZONE}`, ['127.0.0.10']); // a code that is not configured: not a listing
    const listed = parseIp('198.0.0.9')!;
    const r1 = await c.lookup(listed, listed.text);
    assert.deepEqual(r1, [{ zone: ZONE, code: '127.0.0.4' }]);
    const other = parseIp('198.0.0.8')!;
    assert.deepEqual(await c.lookup(other, other.text), []);
    const clean = parseIp('198.0.0.7')!;
    assert.deepEqual(await c.lookup(clean, clean.text), []);
    const before = dns.queries.length;
    // From the cache: synchronous, no query.
    const again = c.lookup(listed, listed.text);
    assert.ok(!(again instanceof Promise));
    assert.deepEqual(again, r1);
    assert.ok(!(c.lookup(clean, clean.text) instanceof Promise));
    assert.equal(dns.queries.length, before);
    assert.equal(c.stats.listed, 1);
  });

  it('never holds a request longer than the timeout; a late answer fills the cache', async () => {
    let now = 1_000_000;
    const c = client({ timeoutMs: 150 }, () => now);
    const ip = parseIp('198.0.0.20')!;
    dns.set(`20.0.0.198.${ZONE}`, ['127.0.0.2']);
    dns.delay(400);
    const t0 = performance.now();
    const r = await c.lookup(ip, ip.text);
    const waited = performance.now() - t0;
    dns.delay(0);
    assert.deepEqual(r, [], 'a timed-out lookup counts as not listed');
    assert.ok(waited < 300, `waited ${waited.toFixed(0)} ms, timeout 150 ms`);
    assert.equal(c.stats.timeouts, 1);
    // The resolver's own timeout is also 150 ms, so the late answer is dropped; the next
    // request after errorTtl asks again and gets the listing.
    await new Promise((resolve) => setTimeout(resolve, 500));
    now += 10_000;
    assert.deepEqual(await c.lookup(ip, ip.text), [{ zone: ZONE, code: '127.0.0.2' }]);
  });

  it('a server that never answers costs each request at most the timeout', async () => {
    const c = client({ timeoutMs: 200 });
    const ip = parseIp('198.0.0.30')!;
    dns.silence(`30.0.0.198.${ZONE}`);
    const t0 = performance.now();
    const results = await Promise.all([c.lookup(ip, ip.text), c.lookup(ip, ip.text), c.lookup(ip, ip.text)]);
    const waited = performance.now() - t0;
    assert.deepEqual(results, [[], [], []]);
    assert.ok(waited < 400, `waited ${waited.toFixed(0)} ms`);
    // Concurrent lookups of one address share one query.
    assert.equal(dns.queries.filter((q) => q === `30.0.0.198.${ZONE}`).length, 1);
  });

  it('the engine refuses a listed client with the configured action, through the policy path', async () => {
    const [listedIp, cleanIp] = addressesIn('JP', 2) as [string, string];
    const rev = (ip: string): string => ip.split('.').reverse().join('.');
    dns.set(`${rev(listedIp)}.${ZONE}`, ['127.0.0.4']);
    const f = sourceFixture({
      source: { reputation: { dnsbl: { resolvers: [dns.address], timeout: '0.3s', zones: [{ zone: ZONE, codes: ['127.0.0.4'], action: 'reject' }] } } },
    });
    after(() => f.close());
    const v = await f.send('dana@example.jp', { ip: listedIp });
    assert.equal(v.action, 'reject');
    assert.equal(v.code, 550);
    assert.match(v.text ?? '', /^接続元IPアドレス/);
    const r = v.reasons.find((x) => x.rule === 'listed-dnsbl');
    assert.ok(r, JSON.stringify(v.reasons));
    assert.match(r.detail, new RegExp(`${listedIp.replaceAll('.', '\\.')} is listed in ${ZONE.replaceAll('.', '\\.')} \\(127\\.0\\.0\\.4\\)`));
    assert.equal((await f.send('dana@example.jp', { ip: cleanIp })).action, 'accept');
  });
});
