// Milter transactions to engine events and verdicts back, and the engine's content
// stage (MessageEvent.alreadyCounted) that keeps policy server + milter from counting a
// message twice.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { MilterMessage } from '../../src/doors/milter/session.ts';
import { headerFromAddress, senderToken, toEomActions, toEvent, type TranslateOptions } from '../../src/doors/milter/translate.ts';
import { senderId, type MessageEvent, type Verdict } from '../../src/engine/types.ts';
import { fixture, limitOnly } from '../support/engine-fixture.ts';

const OPTS: TranslateOptions = { countMessages: false, poolHeader: 'X-Fumidai-Pool', senderTokenHeader: null, senderTokenSecret: null };

function message(over: Partial<MilterMessage> & { macros?: Record<string, string> } = {}): MilterMessage {
  const macros = over.macros ?? { auth_authen: 'Alice@Example.JP', i: 'Q1' };
  return {
    seq: 1,
    connect: { hostname: 'h', family: 'inet', port: 1, address: '203.0.113.5' },
    helo: 'h',
    macro: (n) => macros[n.replace(/^\{(.*)\}$/, '$1')],
    mailFrom: '<alice@example.jp>',
    recipients: ['<b@example.com>', '<c@example.com>'],
    headers: [
      ['Subject', 'x'],
      ['From', '"Alice <boss@evil.example>" <alice@Example.JP>'],
    ],
    raw: Buffer.from('Subject: x\r\n\r\n'),
    truncated: false,
    size: 1234,
    ...over,
  };
}

describe('milter translate: events', () => {
  test('a transaction becomes a message event with login, address, header From and content', () => {
    const e = toEvent(message(), 1000, OPTS, 'c1');
    assert.equal(e.kind, 'message');
    assert.equal(e.door, 'milter');
    assert.equal(e.sender, 'alice@example.jp');
    assert.equal(e.ip, '203.0.113.5');
    assert.equal(e.mailFrom, 'alice@example.jp');
    assert.equal(e.recipientCount, 2);
    assert.equal(e.size, 1234);
    assert.equal(e.transaction, 'Q1');
    assert.equal(e.headerFrom, 'alice@example.jp');
    assert.equal(e.headers?.length, 2);
    assert.equal(e.alreadyCounted, true);
    assert.equal(e.rawTruncated, undefined);
  });

  test('{client_addr} wins over the CONNECT address; no login → sender null; no queue id → connection id', () => {
    const e = toEvent(message({ macros: { client_addr: 'IPv6:2001:db8::7' } }), 1000, { ...OPTS, countMessages: true, context: 'submission' }, 'c9');
    assert.equal(e.ip, '2001:db8::7');
    assert.equal(e.sender, null);
    assert.equal(e.transaction, 'c9.1');
    assert.equal(e.alreadyCounted, undefined);
    assert.equal(e.context, 'submission');
    const unix = toEvent(message({ macros: {}, connect: { hostname: 'localhost', family: 'unix', port: 0, address: '/s' } }), 1, OPTS, 'c');
    assert.equal(unix.ip, null);
  });

  test('header From parsing', () => {
    assert.equal(headerFromAddress('alice@example.jp'), 'alice@example.jp');
    assert.equal(headerFromAddress(' Alice <alice@EXAMPLE.jp>'), 'alice@example.jp');
    assert.equal(headerFromAddress('"Bob <x@y.z>" <bob@b.example>'), 'bob@b.example');
    assert.equal(headerFromAddress('bob@b.example (Bob <not@this>)'), 'bob@b.example');
    assert.equal(headerFromAddress('=?UTF-8?B?5bGx55Sw?= <yamada@example.jp>'), 'yamada@example.jp');
    assert.equal(headerFromAddress('undisclosed'), undefined);
  });
});

describe('milter translate: verdicts', () => {
  const event = toEvent(message(), 1, OPTS, 'c') as MessageEvent;
  const v = (over: Partial<Verdict>): Verdict => ({ action: 'accept', reasons: [], effects: [], ...over });

  test('accept: continue; with a pool: the pool header first', () => {
    assert.deepEqual(toEomActions(v({}), event, OPTS), [{ type: 'continue' }]);
    assert.deepEqual(toEomActions(v({ pool: 'suspect' }), event, OPTS), [
      { type: 'addHeader', name: 'X-Fumidai-Pool', value: 'suspect' },
      { type: 'continue' },
    ]);
  });

  test('defer and reject: our own reply with a matching class; inconsistent codes fixed', () => {
    assert.deepEqual(toEomActions(v({ action: 'defer', code: 450, enhanced: '4.7.1', text: '上限 100%' }), event, OPTS), [
      { type: 'reply', text: '450 4.7.1 上限 100%%' },
    ]);
    assert.deepEqual(toEomActions(v({ action: 'reject', code: 550, enhanced: '5.7.1', text: 'no' }), event, OPTS), [{ type: 'reply', text: '550 5.7.1 no' }]);
    assert.deepEqual(toEomActions(v({ action: 'reject', code: 450, enhanced: '4.7.1', text: 'no' }), event, OPTS), [{ type: 'reply', text: '550 5.7.1 no' }]);
    assert.deepEqual(toEomActions(v({ action: 'defer' }), event, OPTS), [{ type: 'reply', text: '451 4.7.1' }]);
  });

  test('hold: quarantine with the rules as reason, then continue; discard', () => {
    const held = toEomActions(
      v({ action: 'hold', pool: 'suspect', reasons: [{ module: 'content', rule: 'spam-score', detail: 'x' }] }),
      event,
      OPTS,
    );
    assert.deepEqual(held, [
      { type: 'quarantine', reason: 'fumidai: content/spam-score' },
      { type: 'addHeader', name: 'X-Fumidai-Pool', value: 'suspect' },
      { type: 'continue' },
    ]);
    assert.deepEqual(toEomActions(v({ action: 'discard' }), event, OPTS), [{ type: 'discard' }]);
  });

  test('sender token: HMAC-SHA256 truncated to 128 bits, stable, secret-dependent, only for logins', () => {
    const opts = { ...OPTS, senderTokenHeader: 'X-Fumidai-Sender', senderTokenSecret: 'an example secret of some length' };
    const a = toEomActions(v({}), event, opts);
    const token = senderToken('an example secret of some length', senderId('alice@example.jp'));
    assert.match(token, /^[0-9a-f]{32}$/);
    assert.deepEqual(a, [{ type: 'addHeader', name: 'X-Fumidai-Sender', value: token }, { type: 'continue' }]);
    assert.notEqual(senderToken('another secret, also long enough', senderId('alice@example.jp')), token);
    assert.equal(senderToken('an example secret of some length', senderId('alice@example.jp')), token);
    const anonymous = { ...event, sender: null };
    assert.deepEqual(toEomActions(v({}), anonymous, opts), [{ type: 'continue' }]);
  });
});

describe('engine: content stage of a message the policy door counted', () => {
  const f = fixture(limitOnly([{ name: 'minute', seconds: 60, messages: 2, recipients: 100 }]));
  after(() => f.close());

  test('alreadyCounted neither tests the limits nor adds to the counters', async () => {
    const alice = senderId('alice@example.jp');
    assert.equal((await f.send('alice@example.jp')).action, 'accept');
    assert.equal((await f.send('alice@example.jp')).action, 'accept');
    const milterEvent = toEvent(message({ macros: { auth_authen: 'alice@example.jp', i: 'Q9' } }), f.clock.now(), OPTS, 'c');
    // At the limit already: a counting event would be deferred; the content stage is not.
    assert.equal((await f.engine.decide(milterEvent)).action, 'accept');
    assert.equal((await f.engine.decide(milterEvent)).action, 'accept');
    const peek = await f.counters.peek(alice, f.clock.now());
    assert.equal(peek.windows[0]!.messages, 2, 'the milter did not count');
    assert.equal((await f.send('alice@example.jp')).action, 'defer', 'the policy door still enforces the limit');
  });

  test('countMessages: true makes the milter count like the policy door', async () => {
    const bob = senderId('bob@example.jp');
    const opts = { ...OPTS, countMessages: true };
    const ev = (): MessageEvent => toEvent(message({ macros: { auth_authen: 'bob@example.jp' }, recipients: ['<x@y>'] }), f.clock.now(), opts, 'c');
    assert.equal((await f.engine.decide(ev())).action, 'accept');
    assert.equal((await f.engine.decide(ev())).action, 'accept');
    const third = await f.engine.decide(ev());
    assert.equal(third.action, 'defer');
    assert.equal((await f.counters.peek(bob, f.clock.now())).windows[0]!.messages, 2);
  });

  test('a suspended sender is still refused at the content stage', async () => {
    const carol = senderId('carol@example.jp');
    await f.engine.suspendByOperator(carol, 'op', 'test');
    const e = toEvent(message({ macros: { auth_authen: 'carol@example.jp' } }), f.clock.now(), OPTS, 'c');
    const verdict = await f.engine.decide(e);
    assert.equal(verdict.action, 'reject');
    const [action] = toEomActions(verdict, e, OPTS);
    assert.equal(action?.type, 'reply');
    assert.match((action as { text: string }).text, /^550 5\.7\.1 /);
  });
});
