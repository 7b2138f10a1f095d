import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configFromObject } from '../../src/config/load.ts';
import { percentiles } from '../../src/doors/replay/metrics.ts';
import { formatSummary } from '../../src/doors/replay/report.ts';
import { ReplayRunner } from '../../src/doors/replay/runner.ts';

const T = Date.parse('2026-11-02T09:00:00+09:00');
const iso = (ms: number): string => new Date(T + ms).toISOString();

describe('replay summary arithmetic', () => {
  it('nearest-rank percentiles', () => {
    assert.deepEqual(percentiles([]), { n: 0, median: null, p95: null, max: null });
    assert.deepEqual(percentiles([7]), { n: 1, median: 7, p95: 7, max: 7 });
    assert.deepEqual(percentiles([4, 1, 3, 2]), { n: 4, median: 2, p95: 4, max: 4 });
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.deepEqual(percentiles(hundred), { n: 100, median: 50, p95: 95, max: 100 });
  });

  it('a hand-made scenario gives the expected figures', async () => {
    // minute limit 2 messages; burst rule at 3 distinct IPs in 10 minutes; no other detection
    // and no country or spoofing checks (the bots here are in the US).
    const config = configFromObject({
      source: { enabled: false },
      spoofing: { enabled: false },
      limits: { windows: [{ name: 'minute', seconds: 60, messages: 2, recipients: 100 }] },
      detection: {
        // counted by single address (the addresses below share /24s)
        burstSourceIps: { window: '10m', distinct: 3, by: 'address' },
        manySourceIps: { enabled: false },
        dailySourceIps: { enabled: false },
        sustainedBreach: { enabled: false },
        baselineJump: { enabled: false },
        failedLoginsThenSuccess: { enabled: false },
      },
    });
    const r = new ReplayRunner({ config });
    let n = 0;
    const send = async (ms: number, user: string, ip: string, label: string, rcpt = 1, group?: string): Promise<void> => {
      const text = JSON.stringify({ type: 'message', t: iso(ms), id: `m${++n}`, user, ip, rcpt: Array.from({ length: rcpt }, (_, i) => `r${i}@x.jp`), label, ...(group ? { group } : {}) });
      assert.equal(await r.line(text, n), null);
    };
    await r.line(JSON.stringify({ type: 'user', t: iso(0), user: 'alice', group: 'home' }), 0);
    // alice: 4 legit messages in one minute from one IP: 2 accepted, 2 deferred.
    for (let i = 0; i < 4; i++) await send(1000 + i, 'alice', '126.0.0.1', 'legit');
    // bob: legit from 3 addresses in 10 minutes: wrongly suspended at the third (rejected), then 1 more rejected.
    await send(10_000, 'bob', '126.0.0.2', 'legit');
    await send(100_000, 'bob', '1.72.0.1', 'legit');
    await send(200_000, 'bob', '1.72.0.2', 'legit');
    await send(300_000, 'bob', '1.72.0.2', 'legit');
    // carol: compromised; 2 abuse out from 2 bots, stopped at the third bot, 2 more rejected.
    for (let i = 0; i < 5; i++) await send(400_000 + i * 70_000, 'carol', `73.0.0.${i + 1}`, 'abuse', 1, 'blast');
    // dave: compromised, one bot at a slow pace: never stopped; 3 out (one per 2 minutes).
    for (let i = 0; i < 3; i++) await send(700_000 + i * 120_000, 'dave', '3.80.0.9', 'abuse', 2, 'slow');
    // erin: owner's own mail before the compromise (legit), then abuse from 2 bots:
    // the second bot is her third address in 10 minutes.
    await send(1_000_000, 'erin', '126.0.0.5', 'legit');
    await send(1_100_000, 'erin', '73.1.0.1', 'abuse', 1, 'blast');
    await send(1_100_001, 'erin', '73.1.0.2', 'abuse', 1, 'blast');
    // unlabelled traffic is counted but not judged
    await send(1_200_000, 'zed', '126.0.0.9', undefined as unknown as string);

    const s = r.summary();
    assert.deepEqual(s.lines, { total: 21, user: 1, auth: 0, message: 20, blank: 0, skipped: 0 });
    assert.equal(s.messages.total, 20);
    assert.equal(s.messages.defer, 2);
    assert.equal(s.suspensions.total, 3);
    assert.deepEqual(s.suspensions.byRule, { 'burst-source-ips': { total: 3, true: 2, false: 1, unlabelled: 0 } });
    const l = s.labels!;
    // abuse: carol 2 out before stop, dave 3 (never stopped), erin 1 (stopped at the second bot: 3 IPs with her own)
    assert.equal(l.abuse.accounts, 3);
    assert.equal(l.abuse.messages, 10);
    assert.equal(l.abuse.accepted, 6);
    assert.equal(l.abuse.recipientsOut, 2 + 6 + 1);
    assert.deepEqual(l.abuse.acceptedBeforeStopped, { n: 3, median: 2, p95: 3, max: 3 });
    assert.equal(l.abuse.neverStopped, 1);
    assert.equal(l.abuse.stoppedAccounts, 2);
    assert.deepEqual(l.abuse.stoppedBy, { 'burst-source-ips': 2 });
    assert.deepEqual(l.abuse.byAttack!.blast, { accounts: 2, messages: 7, accepted: 3, acceptedBeforeStopped: { n: 2, median: 1, p95: 2, max: 2 }, neverStopped: 0 });
    // legit: alice 4 (2 deferred), bob 4 (2 rejected); erin is not a legitimate user
    assert.equal(l.legit.users, 2);
    assert.equal(l.legit.messages, 8);
    assert.equal(l.legit.deferred, 2);
    assert.equal(l.legit.deferredPct, 25);
    assert.equal(l.legit.rejected, 2);
    assert.equal(l.legit.rejectedPct, 25);
    assert.equal(l.legit.suspendedUsers, 1);
    assert.deepEqual(
      l.legit.suspensions.map((x) => [x.user, x.rule, x.t]),
      [['bob', 'burst-source-ips', iso(200_000)]],
    );
    assert.deepEqual(l.legit.byGroup, {
      '(none)': { users: 1, messages: 4, deferred: 0, rejected: 2, partial: 0, suspendedUsers: 1 },
      home: { users: 1, messages: 4, deferred: 2, rejected: 0, partial: 0, suspendedUsers: 0 },
    });
    assert.deepEqual(l.ownersOfCompromised, { messages: 1, refused: 0 });
    assert.deepEqual(l.refusalsByRule['rate-limit/messages-per-1m'], { legit: 2, abuse: 0, unlabelled: 0 });
    assert.deepEqual(l.refusalsByRule['detection/burst-source-ips'], { legit: 1, abuse: 2, unlabelled: 0 });
    assert.deepEqual(l.refusalsByRule['suspension/suspended'], { legit: 1, abuse: 2, unlabelled: 0 });
    const text = formatSummary(s);
    assert.match(text, /abuse messages accepted before stopped: median 2, p95 3, max 3 \(n=3\)/);
    assert.match(text, /wrongly suspended users: 1/);
    await r.close();
  });
});
