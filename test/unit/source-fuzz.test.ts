import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configFromObject } from '../../src/config/load.ts';
import { headerAddresses, normaliseAddress, parseSenderAddress } from '../../src/identity/addresses.ts';
import { parseImportLine } from '../../src/identity/import.ts';
import { CidrSet, parseIp } from '../../src/geo/ip.ts';
import { GeoSourceResolver } from '../../src/geo/source-resolver.ts';

// Whatever a client or an import file sends, the parsers of this countermeasure answer
// with a value or an Error: they never throw, hang or return something malformed.

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const ALPHABET = 'abcAZ09.:@<>",;()\\ +-_/[]{}%=\u3042\u00e9\u0000\r\n\t';
function junk(r: () => number, max: number): string {
  let s = '';
  const n = Math.floor(r() * max);
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(r() * ALPHABET.length)];
  return s;
}

describe('source and spoofing parsers under random input', () => {
  it('address, header, IP and CIDR parsers never throw unexpectedly', () => {
    const r = rng(20261102);
    const set = new CidrSet();
    for (let i = 0; i < 20_000; i++) {
      const s = junk(r, 60);
      const p = parseIp(s);
      if (p !== null) assert.ok(p.v === 4 || p.v === 6);
      for (const a of headerAddresses(s)) assert.ok(a.includes('@'));
      assert.equal(typeof normaliseAddress(s, '+'), 'string');
      const sa = parseSenderAddress(s, 'alias');
      assert.ok(sa instanceof Error || sa.address.length > 0);
      try {
        set.add(s);
      } catch (e) {
        assert.ok(e instanceof Error && /address or CIDR|prefix length/.test(e.message), String(e));
      }
    }
  });

  it('the import line parser answers a patch or an Error', () => {
    const r = rng(7);
    const opts = { now: Date.parse('2026-11-02T00:00:00Z'), config: configFromObject({}) };
    const shapes = [
      () => junk(r, 80),
      () => JSON.stringify({ user: junk(r, 10), aliases: [junk(r, 20), junk(r, 20)], allowAbroad: r() < 0.5 ? junk(r, 3) : r() < 0.5 }),
      () => JSON.stringify({ user: 'u', primary: r() < 0.5 ? null : 5, abroadUntil: junk(r, 25), thirdParty: junk(r, 5) }),
    ];
    for (let i = 0; i < 10_000; i++) {
      const out = parseImportLine(shapes[i % shapes.length]!(), opts);
      assert.ok(out instanceof Error || (typeof out.sender === 'string' && out.sender.length > 0));
    }
  });

  it('the resolver answers for any client_address text', async () => {
    const res = new GeoSourceResolver(configFromObject({}), { watch: false });
    const r = rng(99);
    for (let i = 0; i < 5_000; i++) {
      const info = await res.resolve(junk(r, 45), 'rcpt');
      assert.match(info.place.country, /^([A-Z]{2}|--)$/);
    }
    res.close();
  });
});
