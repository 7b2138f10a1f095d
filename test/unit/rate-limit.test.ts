import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { senderId } from '../../src/engine/types.ts';
import { fixture, limitOnly, T0 } from '../support/engine-fixture.ts';

const HOUR = 3600_000;

describe('rate limit: window edges', () => {
  it('a limit of N admits exactly N messages in the window, and refuses the N+1th with a 4xx that names the limit', async () => {
    for (const n of [1, 3, 30]) {
      const f = fixture(limitOnly([{ name: 'hour', seconds: '1h', messages: n, recipients: 1000 }]));
      for (let i = 0; i < n; i++) assert.equal((await f.send('alice')).action, 'accept', `message ${i + 1} of ${n}`);
      const refused = await f.send('alice');
      assert.equal(refused.action, 'defer');
      assert.equal(refused.code, 450);
      assert.equal(refused.enhanced, '4.7.1');
      assert.match(refused.text!, new RegExp(`${n} messages per 1h`));
      assert.match(refused.text!, /送信数の上限/);
      assert.equal(refused.reasons[0]!.detail, `${n} messages in 1h already, limit ${n}`);
      await f.close();
    }
  });

  it('the window rolls over: counts last at least the window and at most one sub-bucket longer', async () => {
    const f = fixture(limitOnly([{ name: 'hour', seconds: '1h', messages: 2, recipients: 1000 }]));
    after(() => f.close());
    await f.send('bob', { at: T0 });
    await f.send('bob', { at: T0 + 1000 });
    assert.equal((await f.send('bob', { at: T0 + HOUR - 1000 })).action, 'defer', 'still inside the hour');
    assert.equal((await f.send('bob', { at: T0 + HOUR })).action, 'defer', 'exactly one window later the bucket has not left yet');
    // 1h / 10 sub-buckets = 6 min: both messages have left the ring after 66 minutes.
    assert.equal((await f.send('bob', { at: T0 + HOUR + 6 * 60_000 })).action, 'accept');
    assert.equal((await f.send('bob', { at: T0 + HOUR + 6 * 60_000 + 1 })).action, 'accept');
    assert.equal((await f.send('bob', { at: T0 + HOUR + 6 * 60_000 + 2 })).action, 'defer');
  });

  it('never admits N+1 within any span of one window length, whatever the spacing', async () => {
    const f = fixture(limitOnly([{ name: 'minute', seconds: 60, messages: 5, recipients: 1000 }]));
    after(() => f.close());
    const accepted: number[] = [];
    let t = T0;
    for (let i = 0; i < 2000; i++) {
      t += 1000 + ((i * 7919) % 9000);
      if ((await f.send('carol', { at: t })).action === 'accept') accepted.push(t);
    }
    for (let i = 5; i < accepted.length; i++) assert.ok(accepted[i]! - accepted[i - 5]! >= 60_000, 'six accepted messages within one minute');
    assert.ok(accepted.length > 200, 'the limit must not starve a steady sender');
  });

  it('several windows at once: the tightest one refuses', async () => {
    const f = fixture(limitOnly([
      { name: 'minute', seconds: 60, messages: 3, recipients: 100 },
      { name: 'hour', seconds: 3600, messages: 5, recipients: 100 },
    ]));
    after(() => f.close());
    for (let i = 0; i < 3; i++) assert.equal((await f.send('dave', { at: T0 + i })).action, 'accept');
    const perMinute = await f.send('dave', { at: T0 + 10 });
    assert.equal(perMinute.reasons[0]!.rule, 'messages-per-1m');
    for (let i = 0; i < 2; i++) assert.equal((await f.send('dave', { at: T0 + 120_000 + i })).action, 'accept');
    const perHour = await f.send('dave', { at: T0 + 240_000 });
    assert.equal(perHour.reasons[0]!.rule, 'messages-per-1h');
  });

  it('another user is not affected', async () => {
    const f = fixture(limitOnly([{ name: 'hour', seconds: 3600, messages: 1, recipients: 10 }]));
    after(() => f.close());
    await f.send('erin');
    assert.equal((await f.send('erin')).action, 'defer');
    assert.equal((await f.send('frank')).action, 'accept');
  });
});

describe('rate limit: counting semantics', () => {
  it('a message counts once, its recipients each count, deferred attempts count for nothing', async () => {
    const f = fixture(limitOnly([{ name: 'hour', seconds: 3600, messages: 10, recipients: 5 }]));
    after(() => f.close());
    assert.equal((await f.send('gina', { rcpts: 3 })).action, 'accept');
    // 3 of 5 recipients used: a 4-recipient message gets 2 admitted and 2 refused at RCPT.
    const v = await f.send('gina', { rcpts: 4 });
    assert.equal(v.action, 'accept');
    const peek = await f.counters.peek(senderId('gina'), f.clock.now());
    assert.deepEqual(peek.windows[0], { messages: 2, recipients: 5 });
    // Refused attempts do not use up the limit.
    for (let i = 0; i < 5; i++) assert.equal((await f.send('gina')).action, 'defer');
    assert.deepEqual((await f.counters.peek(senderId('gina'), f.clock.now())).windows[0], { messages: 2, recipients: 5 });
  });

  it('per-user limits replace the defaults; a bulk window raises them only while it lasts', async () => {
    const f = fixture(limitOnly([{ name: 'hour', seconds: 3600, messages: 2, recipients: 100 }]));
    after(() => f.close());
    const s = senderId('city-newsletter');
    await f.records.putUser({ sender: s, limits: [{ messages: 3, recipients: 100 }], bulkWindows: [], createdAt: T0 });
    for (let i = 0; i < 3; i++) assert.equal((await f.send(s)).action, 'accept');
    assert.equal((await f.send(s)).action, 'defer');
    await f.records.putUser({
      sender: s,
      limits: [{ messages: 3, recipients: 100 }],
      bulkWindows: [{ from: T0 + 10 * HOUR, until: T0 + 12 * HOUR, limits: [{ messages: 500, recipients: 5000 }], reason: 'weekly newsletter, approved by ops' }],
      createdAt: T0,
    });
    f.clock.set(T0 + 11.5 * HOUR);
    for (let i = 0; i < 400; i++) assert.equal((await f.send(s, { rcpts: 10 })).action, 'accept');
    f.clock.set(T0 + 12 * HOUR);
    assert.equal((await f.send(s)).action, 'defer', 'after the bulk window the user limit applies again, to the messages already sent');
    f.clock.set(T0 + 13.5 * HOUR);
    assert.equal((await f.send(s)).action, 'accept', 'once the bulk messages have left the window');
  });
});
