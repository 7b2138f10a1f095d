import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { bundledCountryDatabase } from '../../src/geo/country-db.ts';
import { policyRequest, startFumidai } from '../support/fumidai-process.ts';

// The running server reloads its country database on SIGHUP, without a restart and
// without dropping a request.

const require = createRequire(import.meta.url);

describe('fumidai serve: country database reload', () => {
  it('SIGHUP reloads the database file; the health endpoint shows the one in use', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fumidai-geo-proc-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'country.mmdb');
    copyFileSync(bundledCountryDatabase(), file);
    const p = await startFumidai({ source: { geo: { database: file, watch: false } } });
    after(() => p.cleanup());
    assert.match(p.output(), /country database .*country\.mmdb \(country ipvAll, country centroids\)/);
    const health = async () => ((await p.admin('GET', '/api/v1/health')).body.source as { database: { bytes: number; type: string } }).database;
    const before = await health();
    // An IPv6 client at home before the swap; the IPv4-only file does not know it afterwards.
    const req = (instance: string) => ({ protocol_state: 'RCPT', sasl_username: 'ipv6@example.jp', client_address: '2400:4050::1', sender: 'ipv6@example.jp', recipient: 'x@example.com', instance });
    assert.equal(await policyRequest(p.policyPort, req('a')), 'DUNNO');
    copyFileSync(require.resolve('@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country-ipv4.mmdb'), file);
    p.child.kill('SIGHUP');
    let now = before;
    for (let i = 0; i < 50 && now.bytes === before.bytes; i++) {
      await sleep(100);
      now = await health();
    }
    assert.notEqual(now.bytes, before.bytes);
    assert.match(p.output(), /SIGHUP: reloading the country database/);
    assert.match(p.output(), /country database reloaded/);
    assert.match(await policyRequest(p.policyPort, req('b')), /^550 5\.7\.1 海外（ZZ）からの送信は許可されていません/);
  });
});
