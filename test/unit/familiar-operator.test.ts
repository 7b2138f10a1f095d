import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { configFromObject } from '../../src/config/load.ts';
import { senderId, type NetworkOperatorLookup } from '../../src/engine/types.ts';
import { createNetworkOperatorLookup } from '../../src/geo/network-operator.ts';
import { fixture, T0 } from '../support/engine-fixture.ts';

// detection.familiarScope "as": a home line that reconnected to another /24 of the same ISP
// is still the user's own network for sustained-breach and baseline-jump. The AS numbers
// come from the bundled ASN table, as in serve and replay: 153.128.0.0/9 and 180.0.0.0/10
// are NTT Communications (OCN, AS4713), 126.0.0.0/9 SoftBank (AS17676).

const DAY = 86_400_000;
const HOME = '153.128.10.20';
const HOME_AFTER_RECONNECT = '180.10.33.44';
const OTHER_ISP = '126.10.20.30';
const wide = { windows: [{ name: 'minute', seconds: 60, messages: 1000, recipients: 10000 }, { name: 'hour', seconds: 3600, messages: 5000, recipients: 10000 }] };
const tight = { windows: [{ name: 'minute', seconds: 60, messages: 2, recipients: 100 }] };

let operators: NetworkOperatorLookup;
before(() => {
  operators = createNetworkOperatorLookup(configFromObject({}), null)!;
});

/** Ten days of five messages a day from the home line, then a 150-message newsletter from `ip` on day 11. */
async function newsletterFrom(ip: string, configDoc: Record<string, unknown> = {}): Promise<{ suspension: string | null; notices: Record<string, number | string>[]; reasons: string[] }> {
  const f = fixture({ limits: wide, ...configDoc }, operators);
  const id = senderId('town-newsletter');
  for (let d = 0; d < 10; d++) for (let k = 0; k < 5; k++) await f.send(id, { ip: HOME, at: T0 + d * DAY + k * 3600_000 });
  const reasons: string[] = [];
  for (let i = 0; i < 150; i++) {
    const v = await f.send(id, { ip, at: T0 + 11 * DAY + i * 1000 });
    for (const r of v.reasons) if (r.rule === 'baseline-jump') reasons.push(r.detail);
  }
  const suspension = (await f.records.activeSuspension(id))?.rule ?? null;
  const notices = (await f.records.notices(id, 50)).filter((n) => n.kind === 'suspicious').map((n) => n.data);
  await f.close();
  return { suspension, notices, reasons };
}

describe('familiar network operator (detection.familiarScope "as")', () => {
  it('the ASN table is loaded by default and not at all with familiarScope "network"', () => {
    assert.equal(operators.asnOf(HOME), 4713);
    assert.equal(operators.asnOf(HOME_AFTER_RECONNECT), 4713);
    assert.equal(operators.asnOf(OTHER_ISP), 17676);
    assert.equal(operators.asnOf('not an address'), null);
    assert.equal(createNetworkOperatorLookup(configFromObject({ detection: { familiarScope: 'network' } }), null), null);
  });

  it('a missing ASN table is refused with the setting named', () => {
    const config = configFromObject({ source: { reputation: { asnDatabase: '/nonexistent/asn' } } });
    assert.throws(() => createNetworkOperatorLookup(config, null), /^Error: source\.reputation\.asnDatabase: .*asn-ipv4-num\.csv/);
  });

  it('baseline jump after the home line reconnected to another /24 of the same ISP: notified once, not suspended', async () => {
    const r = await newsletterFrom(HOME_AFTER_RECONNECT);
    assert.equal(r.suspension, null);
    assert.equal(r.notices.length, 1, 'one notice per window, not one per message');
    assert.equal(r.notices[0]!.rule, 'baseline-jump');
    assert.equal(r.notices[0]!.asn, 4713);
    assert.equal(r.notices[0]!.operatorAgeDays, 11);
    assert.equal(r.notices[0]!.sourceAgeDays, 0, 'the /24 itself is new');
    assert.ok(r.reasons.length > 0 && r.reasons.every((d) => d.includes('familiar network operator AS4713')), r.reasons[0]);
  });

  it('the same jump from another ISP, or with familiarScope "network", suspends', async () => {
    assert.equal((await newsletterFrom(OTHER_ISP)).suspension, 'baseline-jump');
    assert.equal((await newsletterFrom(HOME_AFTER_RECONNECT, { detection: { familiarScope: 'network' } })).suspension, 'baseline-jump');
  });

  it('sustained breaches: the operator must have been used for familiarAfter, like a network', async () => {
    const run = async (firstUseDaysBefore: number): Promise<string | null> => {
      const f = fixture({ limits: tight, detection: { sustainedBreach: { refusals: 5, window: '10m' } } }, operators);
      const id = senderId('merge');
      const start = T0 + 10 * DAY;
      await f.send(id, { ip: HOME, at: start - firstUseDaysBefore * DAY });
      for (let i = 0; i < 12; i++) await f.send(id, { ip: HOME_AFTER_RECONNECT, at: start + i * 100 });
      const rule = (await f.records.activeSuspension(id))?.rule ?? null;
      await f.close();
      return rule;
    };
    assert.equal(await run(7), null, 'ISP first used 7 days before: familiar');
    assert.equal(await run(5), 'sustained-breach', 'ISP first used 5 days before: not yet');
  });

  it('a botnet is not spared because one of its addresses is in the victim\'s ISP: the next bot suspends', async () => {
    const f = fixture({ limits: tight, detection: { sustainedBreach: { refusals: 5, window: '10m' } } }, operators);
    const id = senderId('victim');
    await f.send(id, { ip: HOME, at: T0 });
    const start = T0 + 10 * DAY;
    const actions: string[] = [];
    for (let i = 0; i < 7; i++) actions.push((await f.send(id, { ip: HOME_AFTER_RECONNECT, at: start + i * 100 })).action);
    assert.deepEqual(actions.slice(-2), ['defer', 'defer'], 'refusals from the familiar ISP only defer');
    assert.equal((await f.send(id, { ip: '45.33.1.9', at: start + 800 })).action, 'reject');
    assert.equal((await f.records.activeSuspension(id))?.rule, 'sustained-breach');
    await f.close();
  });

  it('a rule spared by the familiar operator does not cancel another rule\'s suspension in the same request', async () => {
    const f = fixture({ limits: tight, detection: { sustainedBreach: { refusals: 5, window: '10m' }, burstSourceIps: { distinct: 4, window: '10m' } } }, operators);
    const id = senderId('victim');
    await f.send(id, { ip: HOME, at: T0 });
    const start = T0 + 10 * DAY;
    // Two sent and five refused from the ISP's other pool: sustained-breach is spared.
    for (let i = 0; i < 7; i++) await f.send(id, { ip: HOME_AFTER_RECONNECT, at: start + i * 100 });
    assert.equal(await f.records.activeSuspension(id), null);
    // Three more /24s of the same ISP within the burst window: the fourth network in ten
    // minutes trips burst-source-ips while sustained-breach is spared again.
    const last = [];
    for (const [i, ip] of ['180.10.34.5', '180.10.35.6', '180.10.36.7'].entries()) last.push(await f.send(id, { ip, at: start + 1000 + i * 100 }));
    assert.equal(last[2]!.action, 'reject');
    assert.equal((await f.records.activeSuspension(id))?.rule, 'burst-source-ips');
    assert.ok(last[2]!.reasons.some((r) => r.rule === 'sustained-breach' && r.detail.includes('AS4713')), 'the spared rule says why');
    await f.close();
  });
});
