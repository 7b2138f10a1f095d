import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { senderId } from '../../src/engine/types.ts';
import { fixture, T0 } from '../support/engine-fixture.ts';

const MIN = 60_000;
const DAY = 86_400_000;

describe('detection of compromised IDs', () => {
  it('burst of source IPs: the ID is suspended at the threshold, with rule and figures recorded, and gets the 5xx', async () => {
    const f = fixture({ detection: { burstSourceIps: { distinct: 4, window: '10m' } } });
    const results = [];
    for (let i = 1; i <= 5; i++) results.push(await f.send('victim', { ip: `45.${i}.0.1`, at: T0 + i * 1000 }));
    assert.deepEqual(results.map((v) => v.action), ['accept', 'accept', 'accept', 'reject', 'reject']);
    assert.equal(results[3]!.code, 550);
    assert.match(results[3]!.text!, /送信は停止されています/);
    assert.match(results[3]!.text!, /suspended/);
    const s = await f.records.activeSuspension(senderId('victim'));
    assert.equal(s?.rule, 'burst-source-ips');
    assert.deepEqual(s?.figures, { distinctPrefixes: 4, distinctIps: 4, threshold: 4, window: 600 });
    assert.equal(s?.autoReleaseAt, null);
    const audit = await f.records.auditLog({ sender: senderId('victim'), limit: 10 });
    assert.equal(audit[0]?.action, 'suspend');
    const notices = await f.records.notices(senderId('victim'), 10);
    assert.equal(notices[0]?.kind, 'suspended');
    await f.close();
  });

  it('a person on home and mobile networks is not suspended', async () => {
    const f = fixture();
    const ips = ['126.1.2.3', '126.1.2.3', '1.72.4.5', '1.72.9.9', '126.1.2.3', '1.72.4.5'];
    for (const [i, ip] of ips.entries()) assert.equal((await f.send('commuter', { ip, at: T0 + i * 15 * MIN })).action, 'accept');
    assert.equal(await f.records.activeSuspension(senderId('commuter')), null);
    await f.close();
  });

  it('a phone behind carrier NAT: a new address per message within one /24 is one network, not suspended', async () => {
    const f = fixture();
    for (let i = 0; i < 12; i++) assert.equal((await f.send('phone', { ip: `1.72.4.${10 + i}`, at: T0 + i * 40_000 })).action, 'accept');
    assert.equal(await f.records.activeSuspension(senderId('phone')), null);
    // The same spread over separate networks is a botnet.
    const g = fixture();
    const actions: string[] = [];
    for (let i = 0; i < 7; i++) actions.push((await g.send('bots', { ip: `45.${i + 1}.7.9`, at: T0 + i * 40_000 })).action);
    assert.deepEqual(actions, ['accept', 'accept', 'accept', 'accept', 'accept', 'reject', 'reject']);
    assert.equal((await g.records.activeSuspension(senderId('bots')))?.rule, 'burst-source-ips');
    await f.close();
    await g.close();
  });

  it('by: address counts single addresses, as before', async () => {
    const f = fixture({ detection: { burstSourceIps: { by: 'address', distinct: 6 } } });
    const actions: string[] = [];
    for (let i = 0; i < 7; i++) actions.push((await f.send('phone', { ip: `1.72.4.${10 + i}`, at: T0 + i * 40_000 })).action);
    assert.equal(actions[5], 'reject');
    assert.deepEqual((await f.records.activeSuspension(senderId('phone')))?.figures, { distinctIps: 6, threshold: 6, window: 600 });
    await f.close();
  });

  it('daily networks: a slow botnet, one new network per message, is suspended at the daily threshold', async () => {
    const f = fixture();
    const slow = f.config.detection.dailySourceIps.distinct;
    const actions: string[] = [];
    for (let i = 0; i < slow + 1; i++) actions.push((await f.send('slow', { ip: `45.${i + 1}.7.9`, at: T0 + i * 30 * MIN })).action);
    assert.equal(actions.indexOf('reject'), slow - 1);
    assert.equal((await f.records.activeSuspension(senderId('slow')))?.rule, 'daily-source-ips');
    await f.close();
  });

  it('sustained breaches from a familiar network (the office, known for a week) defer and notify but do not suspend', async () => {
    const f = fixture({ limits: { windows: [{ name: 'minute', seconds: 60, messages: 2, recipients: 100 }] }, detection: { sustainedBreach: { refusals: 5, window: '10m' } } });
    const id = senderId('newsletter');
    await f.send(id, { ip: '203.0.113.10', at: T0 });
    const start = T0 + 8 * DAY;
    const actions: string[] = [];
    // Another address of the office /24 (the NAT's pool): still the familiar network.
    for (let i = 0; i < 12; i++) actions.push((await f.send(id, { ip: '203.0.113.11', at: start + i * 100 })).action);
    assert.deepEqual(actions, ['accept', 'accept', ...new Array(10).fill('defer')]);
    assert.equal(await f.records.activeSuspension(id), null);
    const notices = (await f.records.notices(id, 50)).filter((n) => n.kind === 'suspicious');
    assert.equal(notices.length, 1, 'one notice per breach window, not one per refusal');
    assert.equal(notices[0]!.data.rule, 'sustained-breach');
    // A week later the same ID pushes from a network it never used: suspended.
    const later = start + 7 * DAY;
    const blast: string[] = [];
    for (let i = 0; i < 8; i++) blast.push((await f.send(id, { ip: '198.51.100.77', at: later + i * 100 })).action);
    assert.deepEqual(blast, ['accept', 'accept', 'defer', 'defer', 'defer', 'defer', 'reject', 'reject']);
    assert.equal((await f.records.activeSuspension(id))?.rule, 'sustained-breach');
    await f.close();
  });

  it('a rule in notify mode does not mask another rule\'s suspension in the same request', async () => {
    const f = fixture({ limits: { windows: [{ name: 'minute', seconds: 60, messages: 2, recipients: 100 }] }, detection: { sustainedBreach: { refusals: 3, window: '10m', action: 'notify' }, burstSourceIps: { distinct: 4, window: '10m' } } });
    const id = senderId('both-rules');
    const actions: string[] = [];
    // Refused from the third message on; the fourth network arrives with the fourth refusal.
    for (const [i, ip] of ['45.1.0.1', '45.1.0.1', '45.2.0.1', '45.3.0.1', '45.1.0.1', '45.4.0.1'].entries()) actions.push((await f.send(id, { ip, at: T0 + i * 100 })).action);
    assert.deepEqual(actions, ['accept', 'accept', 'defer', 'defer', 'defer', 'reject']);
    assert.equal((await f.records.activeSuspension(id))?.rule, 'burst-source-ips');
    assert.ok((await f.records.notices(id, 10)).some((n) => n.kind === 'suspicious' && n.data.rule === 'sustained-breach'), 'the notify-mode rule still notifies');
    await f.close();
  });

  it('a refused transaction counts one refusal however many recipients the client then tries', async () => {
    const f = fixture({ limits: { windows: [{ name: 'minute', seconds: 60, messages: 2, recipients: 100 }] }, detection: { sustainedBreach: { refusals: 5, window: '10m' } } });
    const id = senderId('many-recipients');
    const actions: string[] = [];
    for (let i = 0; i < 6; i++) actions.push((await f.send(id, { ip: '198.51.100.7', at: T0 + i * 1000, rcpts: 30 })).action);
    // Two admitted, then four refused transactions of 30 recipients each: 4 refusals, under 5.
    assert.deepEqual(actions, ['accept', 'accept', 'defer', 'defer', 'defer', 'defer']);
    assert.equal(await f.records.activeSuspension(id), null);
    assert.equal((await f.send(id, { ip: '198.51.100.7', at: T0 + 7000, rcpts: 30 })).action, 'reject', 'the fifth refused transaction suspends');
    assert.equal((await f.records.activeSuspension(id))?.rule, 'sustained-breach');
    // Decision history for lookup: one row per refused transaction, not one per refused recipient.
    const history = await f.records.recentDecisions(id, 500);
    assert.equal(history.length, 5, 'four deferred transactions and the one that suspended');
    await f.close();
  });

  it('sustained breaches from a network first seen less than familiarAfter ago suspend (a new server blasting)', async () => {
    const f = fixture({ limits: { windows: [{ name: 'minute', seconds: 60, messages: 2, recipients: 100 }] }, detection: { sustainedBreach: { refusals: 5, window: '10m' } } });
    const id = senderId('victim2');
    const familiarAfter = f.config.detection.sustainedBreach.familiarAfter!;
    await f.send(id, { ip: '198.51.100.77', at: T0 });
    // An hour short of familiar: the network was planted too recently.
    for (let i = 0; i < 8; i++) await f.send(id, { ip: '198.51.100.77', at: T0 + familiarAfter * 1000 - 3600_000 + i * 100 });
    const s = await f.records.activeSuspension(id);
    assert.equal(s?.rule, 'sustained-breach');
    assert.equal(s?.figures.sourceAgeDays, Number(((familiarAfter * 1000 - 3600_000) / DAY).toFixed(1)));
    await f.close();
  });

  it('the default familiarAfter is under a week: a weekly newsletter from the office finds its network familiar the next week', async () => {
    const f = fixture({ limits: { windows: [{ name: 'minute', seconds: 60, messages: 2, recipients: 100 }] }, detection: { sustainedBreach: { refusals: 5, window: '10m' } } });
    const id = senderId('weekly');
    // First ever message from the office on a Monday at 10:30; next Monday's newsletter starts at 10:05.
    await f.send(id, { ip: '203.0.113.10', at: T0 + 90 * MIN });
    for (let i = 0; i < 12; i++) await f.send(id, { ip: '203.0.113.10', at: T0 + 7 * DAY + 65 * MIN + i * 100 });
    assert.equal(await f.records.activeSuspension(id), null);
    await f.close();
  });

  it('sustained breaches: a client that keeps pushing after refusals is suspended, with automatic release', async () => {
    const f = fixture({ limits: { windows: [{ name: 'minute', seconds: 60, messages: 2, recipients: 100 }] }, detection: { sustainedBreach: { refusals: 5, window: '10m', autoReleaseAfter: '1d' } } });
    const actions: string[] = [];
    for (let i = 0; i < 8; i++) actions.push((await f.send('pusher', { at: T0 + i * 100 })).action);
    assert.deepEqual(actions, ['accept', 'accept', 'defer', 'defer', 'defer', 'defer', 'reject', 'reject']);
    const s = await f.records.activeSuspension(senderId('pusher'));
    assert.equal(s?.rule, 'sustained-breach');
    assert.equal(s?.autoReleaseAt, T0 + 600 + DAY);
    await f.close();
  });

  it('automatic release happens once per cooldown; the next suspension waits for an operator', async () => {
    const f = fixture({ limits: { windows: [{ name: 'minute', seconds: 60, messages: 1, recipients: 100 }] }, detection: { sustainedBreach: { refusals: 3, window: '10m', autoReleaseAfter: '1h' } } });
    const id = senderId('looper');
    const pushUntilSuspended = async (): Promise<void> => {
      for (let i = 0; i < 10 && (await f.records.activeSuspension(id)) === null; i++) await f.send(id, { at: f.clock.now() + 10 });
    };
    await pushUntilSuspended();
    const first = await f.records.activeSuspension(id);
    assert.ok(first?.autoReleaseAt);
    f.clock.set(first.autoReleaseAt);
    assert.equal(await f.engine.releaseDue(), 1);
    assert.equal((await f.send(id, { at: f.clock.now() + 20 * MIN })).action, 'accept');
    await pushUntilSuspended();
    const second = await f.records.activeSuspension(id);
    assert.ok(second && second.id !== first.id);
    assert.equal(second.autoReleaseAt, null, 'released automatically less than 30 days ago: no second automatic release');
    f.clock.set(f.clock.now() + 2 * DAY);
    assert.equal(await f.engine.releaseDue(), 0);
    assert.equal((await f.send(id, { at: f.clock.now() + 1 })).action, 'reject');
    assert.ok(await f.engine.release(id, 'support-tanaka'), 'an operator can always release');
    assert.equal((await f.send(id, { at: f.clock.now() + 20 * MIN })).action, 'accept');
    await f.close();
  });

  it('baseline jump: an established low-volume ID that suddenly sends a lot from a new network is suspended; a new ID is not judged by it', async () => {
    const f = fixture({ limits: { windows: [{ name: 'minute', seconds: 60, messages: 1000, recipients: 10000 }, { name: 'hour', seconds: 3600, messages: 5000, recipients: 10000 }] } });
    const steady = senderId('steady');
    for (let d = 0; d < 10; d++) for (let k = 0; k < 5; k++) await f.send(steady, { at: T0 + d * DAY + k * 3600_000 });
    let stoppedAt = -1;
    for (let i = 0; i < 200 && stoppedAt < 0; i++) {
      if ((await f.send(steady, { ip: '45.33.1.9', at: T0 + 11 * DAY + i * 1000 })).action === 'reject') stoppedAt = i;
    }
    const s = await f.records.activeSuspension(steady);
    assert.equal(s?.rule, 'baseline-jump');
    assert.equal(s?.figures.sourceAgeDays, 0);
    assert.ok(stoppedAt >= 59 && stoppedAt <= 61, `stopped after ${stoppedAt} messages`);
    for (let i = 0; i < 200; i++) assert.equal((await f.send('newcomer', { at: T0 + 11 * DAY + i * 1000 })).action, 'accept');
    await f.close();
  });

  it('baseline jump from a familiar network (the office, used for more than familiarAfter) notifies once per window and does not suspend', async () => {
    const f = fixture({ limits: { windows: [{ name: 'minute', seconds: 60, messages: 1000, recipients: 10000 }, { name: 'hour', seconds: 3600, messages: 5000, recipients: 10000 }] } });
    const office = senderId('office');
    for (let d = 0; d < 10; d++) for (let k = 0; k < 5; k++) await f.send(office, { ip: '203.0.113.10', at: T0 + d * DAY + k * 3600_000 });
    const newsletter: string[] = [];
    // The newsletter: 150 messages in under 3 minutes, from another address of the office /24.
    for (let i = 0; i < 150; i++) newsletter.push((await f.send(office, { ip: '203.0.113.11', at: T0 + 11 * DAY + i * 1000 })).action);
    assert.ok(newsletter.every((a) => a === 'accept'));
    assert.equal(await f.records.activeSuspension(office), null);
    const notices = (await f.records.notices(office, 50)).filter((n) => n.kind === 'suspicious');
    assert.equal(notices.length, 1, 'one notice per window, not one per message');
    assert.equal(notices[0]!.data.rule, 'baseline-jump');
    assert.equal(notices[0]!.data.sourceAgeDays, 11);
    // Next hour, the same ID jumps from a network it never used: suspended.
    for (let i = 0; i < 150 && (await f.records.activeSuspension(office)) === null; i++) await f.send(office, { ip: '45.33.1.9', at: T0 + 11 * DAY + 2 * 3600_000 + i * 1000 });
    assert.equal((await f.records.activeSuspension(office))?.rule, 'baseline-jump');
    await f.close();
  });

  it('baseline jump: a network first used less than familiarAfter ago is not familiar; familiarAfter null suspends from any network', async () => {
    const windows = [{ name: 'minute', seconds: 60, messages: 1000, recipients: 10000 }, { name: 'hour', seconds: 3600, messages: 5000, recipients: 10000 }];
    const run = async (familiarAfter: string | null, firstUse: number): Promise<string | null> => {
      const f = fixture({ limits: { windows }, detection: { baselineJump: { familiarAfter } } });
      const id = senderId('u');
      for (let d = 0; d < 10; d++) for (let k = 0; k < 5; k++) await f.send(id, { ip: d * DAY >= firstUse ? '203.0.113.10' : '126.10.20.30', at: T0 + d * DAY + k * 3600_000 });
      for (let i = 0; i < 150; i++) await f.send(id, { ip: '203.0.113.10', at: T0 + 11 * DAY + i * 1000 });
      const rule = (await f.records.activeSuspension(id))?.rule ?? null;
      await f.close();
      return rule;
    };
    assert.equal(await run('6d', 2 * DAY), null, 'first used 9 days before: familiar');
    assert.equal(await run('6d', 6 * DAY), 'baseline-jump', 'first used 5 days before: not familiar');
    assert.equal(await run(null, 0), 'baseline-jump', 'no exception');
  });

  it('baseline jump leaves alone IDs with operator-set limits or a (recent) bulk window', async () => {
    const f = fixture({ limits: { windows: [{ name: 'minute', seconds: 60, messages: 1000, recipients: 10000 }, { name: 'hour', seconds: 3600, messages: 5000, recipients: 10000 }] } });
    const raised = [{ messages: 1000, recipients: 10000 }, { messages: 5000, recipients: 10000 }];
    const base = { bulkWindows: [], createdAt: T0 };
    await f.records.putUser({ ...base, sender: senderId('merge'), limits: raised });
    await f.records.putUser({ ...base, sender: senderId('campaign'), limits: null, bulkWindows: [{ from: T0 + 11 * DAY - 3600_000, until: T0 + 11 * DAY + 60_000, limits: raised, reason: 'monthly newsletter' }] });
    for (let d = 0; d < 10; d++) for (let k = 0; k < 5; k++) for (const id of ['merge', 'campaign', 'plain']) await f.send(id, { at: T0 + d * DAY + k * 3600_000 });
    // The jump comes from a network none of them used before (else 'plain' would only be notified).
    for (let i = 0; i < 150; i++) for (const id of ['merge', 'campaign', 'plain']) await f.send(id, { ip: '45.33.1.9', at: T0 + 11 * DAY + i * 1000 });
    assert.equal(await f.records.activeSuspension(senderId('merge')), null);
    assert.equal(await f.records.activeSuspension(senderId('campaign')), null, 'the bulk window ended a minute in; still exempt within the hour after');
    assert.equal((await f.records.activeSuspension(senderId('plain')))?.rule, 'baseline-jump');
    await f.close();
  });

  it('failed logins followed by a success suspend the ID; a few typos do not', async () => {
    const f = fixture({ detection: { failedLoginsThenSuccess: { failures: 5, window: '1h' } } });
    const auth = (user: string, ok: boolean, t: number) =>
      f.engine.decide({ kind: 'auth', t, door: 'replay', sender: senderId(user), ip: '185.1.1.1', ok });
    for (let i = 0; i < 2; i++) await auth('typo', false, T0 + i);
    await auth('typo', true, T0 + 10);
    assert.equal(await f.records.activeSuspension(senderId('typo')), null);
    for (let i = 0; i < 6; i++) await auth('guessed', false, T0 + i);
    const v = await auth('guessed', true, T0 + 100);
    assert.equal(v.action, 'reject');
    assert.equal((await f.records.activeSuspension(senderId('guessed')))?.rule, 'failed-logins-then-success');
    await f.close();
  });

  it('failed logins from many addresses do not count as source IPs (no suspension by a third party)', async () => {
    const f = fixture();
    for (let i = 0; i < 50; i++) await f.engine.decide({ kind: 'auth', t: T0 + i, door: 'replay', sender: senderId('target'), ip: `45.0.${i}.1`, ok: false });
    assert.equal((await f.send('target', { at: T0 + 100 })).action, 'accept');
    await f.close();
  });

  it('a rule set to notify records a notice and an audit entry once per window, and does not suspend', async () => {
    const f = fixture({ detection: { burstSourceIps: { distinct: 2, action: 'notify' }, manySourceIps: { enabled: false } } });
    const id = senderId('watched');
    // The rule fires on the second to the sixth message: one notice for the window, not five.
    for (let i = 0; i < 6; i++) assert.equal((await f.send(id, { ip: `45.${i}.0.1`, at: T0 + i })).action, 'accept');
    assert.equal(await f.records.activeSuspension(id), null);
    const suspicious = async (): Promise<number> => (await f.records.notices(id, 50)).filter((n) => n.kind === 'suspicious').length;
    assert.equal(await suspicious(), 1);
    assert.equal((await f.records.auditLog({ sender: id, limit: 50 })).filter((a) => a.action === 'suspicious').length, 1);
    assert.equal((await f.records.notices(id, 10))[0]?.data.rule, 'burst-source-ips');
    // After the rule's window (10 min) it notifies again.
    for (let i = 0; i < 2; i++) await f.send(id, { ip: `46.${i}.0.1`, at: T0 + 11 * MIN + i });
    assert.equal(await suspicious(), 2);
    await f.close();
  });

  it('operator suspension and release', async () => {
    const f = fixture();
    const id = senderId('Manual@Example.JP');
    await f.engine.suspendByOperator(id, 'support-sato', 'user reported phishing');
    const v = await f.send('manual@example.jp');
    assert.equal(v.action, 'reject');
    assert.equal(v.code, 550);
    await f.engine.release(id, 'support-sato');
    assert.equal((await f.send('manual@example.jp')).action, 'accept');
    const history = await f.records.suspensionHistory(id);
    assert.equal(history.length, 1);
    assert.equal(history[0]?.releasedBy, 'support-sato');
    await f.close();
  });

  it('unauthenticated submission is refused, unless the policy context allows it', async () => {
    const f = fixture({ policy: { contexts: { relay: { requireAuth: false } } } });
    const base = { kind: 'rcpt' as const, t: T0, door: 'policy' as const, sender: null, ip: '10.0.0.1', mailFrom: 'x@y', recipient: 'a@b', pendingRecipients: 0, triedRecipients: 0, transaction: 't' };
    const v = await f.engine.decide(base);
    assert.equal(v.action, 'reject');
    assert.equal(v.code, 530);
    assert.equal((await f.engine.decide({ ...base, context: 'relay' })).action, 'accept');
    await f.close();
  });
});
