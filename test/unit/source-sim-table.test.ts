import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bundledCountryDatabase, CountryDatabase } from '../../src/geo/country-db.ts';
import { numberToIpv4, parseIp } from '../../src/geo/ip.ts';
import { IP_RANGES } from '../../src/sim/ip-ranges.ts';

// The scenario generator's address table (src/sim/ip-ranges.ts) against the country
// database fumidai ships: simulated travellers, bots and proxies must be where the table
// says, or replay results would measure the database instead of the rules. One address
// per /24 of every block is looked up.

describe('simulation address table vs the shipped country database', () => {
  it('every block is in its country for at least 99.5 % of its /24s; the exceptions are listed', () => {
    const db = new CountryDatabase(bundledCountryDatabase());
    const exceptions: string[] = [];
    for (const r of IP_RANGES) {
      const [ip, len] = r.cidr.split('/') as [string, string];
      const base = parseIp(ip)!.n as number;
      const size = 2 ** (32 - Number(len));
      let n = 0;
      const elsewhere = new Map<string, number>();
      for (let off = 0; off < size; off += 256) {
        n++;
        const cc = db.lookup(parseIp(numberToIpv4(base + off + 77))!).country;
        if (cc !== r.country) elsewhere.set(cc, (elsewhere.get(cc) ?? 0) + 1);
      }
      const wrong = [...elsewhere.values()].reduce((a, b) => a + b, 0);
      if (wrong > 0) exceptions.push(`${r.cidr} (${r.country}, ${r.use}): ${wrong} of ${n} /24s in ${[...elsewhere.keys()].join(',')}`);
      assert.ok(wrong / n <= 0.005, `${r.cidr}: ${wrong} of ${n} /24s are not in ${r.country}`);
    }
    process.stdout.write(`# blocks with /24s elsewhere: ${exceptions.length ? exceptions.join('; ') : 'none'}\n`);
  });
});
