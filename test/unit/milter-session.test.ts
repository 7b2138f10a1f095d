// The per-connection milter state machine, driven packet by packet the way Postfix,
// Sendmail and miltertest drive it.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MilterFrameDecoder, MilterPayloadError, parseOptneg, SMFIC, SMFIF, SMFIP, SMFIR, type Packet } from '../../src/doors/milter/codec.ts';
import { MilterSession, WANTED_PROTOCOL, type EomAction, type MilterMessage } from '../../src/doors/milter/session.ts';
import { pkt } from '../miltertest/client.ts';

function packet(bytes: Buffer): Packet {
  return new MilterFrameDecoder(1 << 24).push(bytes)[0]!;
}

interface Harness {
  session: MilterSession;
  seen: MilterMessage[];
  /** Feeds packets; returns the reply command bytes (awaiting EOM). */
  feed(...packets: Buffer[]): Promise<number[]>;
  replies(...packets: Buffer[]): Promise<Buffer[]>;
}

function harness(actions: readonly EomAction[] = [{ type: 'continue' }], maxMessageBytes = 1 << 20): Harness {
  const seen: MilterMessage[] = [];
  const session = new MilterSession({
    maxMessageBytes,
    onMessage: async (m) => {
      seen.push(m);
      return actions;
    },
  });
  const replies = async (...packets: Buffer[]): Promise<Buffer[]> => {
    const out: Buffer[] = [];
    for (const p of packets) {
      const r = session.handle(packet(p));
      if (r === 'close') {
        out.push(Buffer.from('close'));
        continue;
      }
      out.push(...(await r));
    }
    return out;
  };
  return {
    session,
    seen,
    replies,
    feed: async (...packets) => (await replies(...packets)).map((b) => (b.toString() === 'close' ? -1 : b[4]!)),
  };
}

const NEGOTIATED = [pkt.optneg(), pkt.macro('C', { j: 'mx', '{daemon_name}': 'ORIGINATING' }), pkt.connect('client.example', '203.0.113.5'), pkt.helo('client.example')];

function postfixMessage(login: string | null, qid: string, headers: [string, string][] = [['From', ' A <a@example.jp>']], body = 'hi\r\n'): Buffer[] {
  return [
    pkt.macro('M', { i: qid, ...(login !== null ? { '{auth_authen}': login, '{auth_type}': 'PLAIN' } : {}) }),
    pkt.mail('<a@example.jp>', 'SIZE=12'),
    pkt.macro('R', { i: qid }),
    pkt.rcpt('<b@example.com>'),
    pkt.macro('T', { i: qid }),
    pkt.data(),
    ...headers.map(([n, v]) => pkt.header(n, v)),
    pkt.macro('N', { i: qid }),
    pkt.eoh(),
    pkt.body(body),
    pkt.macro('E', { i: qid }),
    pkt.eob(),
    pkt.abort(), // Postfix, after every transaction
  ];
}

describe('milter session: negotiation', () => {
  test('against Postfix\'s offer: only what we need, a reply to every event (no NR_*), symbol lists', async () => {
    const h = harness();
    const [reply] = await h.replies(pkt.optneg());
    assert.equal(reply![4], SMFIC.OPTNEG);
    const o = parseOptneg(reply!.subarray(5)) as { version: number; actions: number; protocol: number };
    assert.equal(o.version, 6);
    assert.equal(o.actions, SMFIF.ADDHDRS | SMFIF.QUARANTINE | SMFIF.SETSYMLIST);
    assert.equal(o.protocol, WANTED_PROTOCOL);
    assert.equal(o.protocol, SMFIP.NOUNKNOWN | SMFIP.HDR_LEADSPC);
    // NR_* would stall Postfix on Nagle + delayed ACK (see WANTED_PROTOCOL).
    assert.equal(o.protocol & (SMFIP.NR_CONN | SMFIP.NR_HELO | SMFIP.NR_MAIL | SMFIP.NR_RCPT | SMFIP.NR_DATA | SMFIP.NR_HDR | SMFIP.NR_EOH | SMFIP.NR_BODY), 0);
    assert.equal(o.protocol & (SMFIP.NOHDRS | SMFIP.NOBODY | SMFIP.NOMAIL | SMFIP.NORCPT | SMFIP.NOCONNECT), 0, 'needs headers, body, envelope');
    const lists = reply!.subarray(17).toString('latin1');
    assert.match(lists, /\{auth_authen\}/);
    assert.match(lists, /\{client_addr\}/);
    assert.match(lists, /\{daemon_name\}/);
  });

  test('when NR_* flags are in force (an MTA offering only those), no reply is sent to those events', async () => {
    const h = harness();
    // The session never asks for NR_*; this checks the reply logic by forcing the negotiated bits.
    await h.feed(pkt.optneg());
    (h.session as unknown as { protocol: number }).protocol = SMFIP.NR_MAIL | SMFIP.NR_HDR;
    assert.deepEqual(await h.feed(pkt.mail('<a@b>'), pkt.header('From', 'a@b'), pkt.rcpt('<c@d>')), [SMFIR.CONTINUE]);
  });

  test('an MTA offering less gets only the intersection; version 2 gets no protocol bits or lists', async () => {
    const h = harness();
    const [r] = await h.replies(pkt.optneg(6, SMFIF.ADDHDRS, SMFIP.NOUNKNOWN | SMFIP.NR_BODY));
    assert.deepEqual(parseOptneg(r!.subarray(5)), { version: 6, actions: SMFIF.ADDHDRS, protocol: SMFIP.NOUNKNOWN });
    assert.equal(r!.length, 17, 'no symbol lists without SETSYMLIST');
    const h2 = harness();
    const [r2] = await h2.replies(pkt.optneg(2, 0x3f, 0x7f));
    assert.deepEqual(parseOptneg(r2!.subarray(5)), { version: 2, actions: SMFIF.ADDHDRS | SMFIF.QUARANTINE, protocol: 0 });
  });

  test('without NR flags every event gets CONTINUE', async () => {
    const h = harness();
    await h.feed(pkt.optneg(6, 0x1ff, 0));
    const got = await h.feed(pkt.connect('h', '192.0.2.1'), pkt.helo('h'), pkt.mail('<a@b>'), pkt.rcpt('<c@d>'), pkt.data(), pkt.header('From', 'a@b'), pkt.eoh(), pkt.body('x\r\n'), pkt.unknown('FOO'), pkt.eob());
    assert.deepEqual(got, Array(10).fill(SMFIR.CONTINUE));
  });

  test('anything before OPTNEG, a second OPTNEG and an old version are protocol errors', () => {
    assert.throws(() => harness().session.handle(packet(pkt.mail('<a@b>'))), MilterPayloadError);
    const h = harness();
    h.session.handle(packet(pkt.optneg()));
    assert.throws(() => h.session.handle(packet(pkt.optneg())), /second option negotiation/);
    assert.throws(() => harness().session.handle(packet(pkt.optneg(1))), /version 1/);
  });
});

describe('milter session: transactions', () => {
  test('a Postfix transaction: CONTINUE to each event, none to MACRO/ABORT; macros, headers, raw message rebuilt', async () => {
    const h = harness();
    const replies = await h.feed(...NEGOTIATED, ...postfixMessage('alice@example.jp', 'Q1', [['From', ' Alice <a@example.jp>'], ['Subject', '\tfolded\n line']]));
    // OPTNEG; CONNECT, HELO; MAIL, RCPT, DATA, 2 headers, EOH, BODY; EOB
    assert.deepEqual(replies, [SMFIC.OPTNEG, ...Array(10).fill(SMFIR.CONTINUE)]);
    const m = h.seen[0]!;
    assert.equal(m.seq, 1);
    assert.equal(m.macro('{auth_authen}'), 'alice@example.jp');
    assert.equal(m.macro('auth_authen'), 'alice@example.jp');
    assert.equal(m.macro('i'), 'Q1');
    assert.equal(m.macro('{daemon_name}'), 'ORIGINATING');
    assert.equal(m.mailFrom, '<a@example.jp>');
    assert.deepEqual(m.recipients, ['<b@example.com>']);
    assert.deepEqual(m.connect, { hostname: 'client.example', family: 'inet', port: 51234, address: '203.0.113.5' });
    assert.equal(m.helo, 'client.example');
    assert.deepEqual(m.headers, [
      ['From', 'Alice <a@example.jp>'],
      ['Subject', '\tfolded\n line'],
    ]);
    assert.equal(m.raw.toString(), 'From: Alice <a@example.jp>\r\nSubject:\tfolded\r\n line\r\n\r\nhi\r\n');
    assert.equal(m.size, m.raw.length);
    assert.equal(m.truncated, false);
  });

  test('several messages per connection; ABORT in any state, repeated, resets the transaction and its macros', async () => {
    const h = harness();
    await h.feed(...NEGOTIATED);
    await h.feed(...postfixMessage('alice@example.jp', 'Q1'));
    // RSET mid-transaction, ABORT twice, then a message without a login
    await h.feed(pkt.macro('M', { '{auth_authen}': 'x@y' }), pkt.mail('<x@y>'), pkt.abort(), pkt.abort());
    await h.feed(...postfixMessage(null, 'Q2'));
    await h.feed(pkt.abort(), ...postfixMessage('carol@example.jp', 'Q3'));
    assert.deepEqual(h.seen.map((m) => [m.macro('i'), m.macro('auth_authen') ?? null, m.recipients.length]), [
      ['Q1', 'alice@example.jp', 1],
      ['Q2', null, 1],
      ['Q3', 'carol@example.jp', 1],
    ]);
    assert.equal(h.session.messages, 4, 'the aborted one counted as a transaction');
  });

  test('ABORT before anything else and right after negotiation is harmless', async () => {
    const h = harness();
    assert.deepEqual(await h.feed(pkt.optneg(), pkt.abort(), pkt.abort(), pkt.connect('h', '192.0.2.1'), pkt.abort()), [SMFIC.OPTNEG, SMFIR.CONTINUE]);
  });

  test('stages skipped (miltertest, Sendmail) still give a message; QUIT closes; QUIT_NC forgets the connection', async () => {
    const h = harness();
    assert.deepEqual(await h.feed(pkt.optneg(), pkt.macro('C', { '{client_addr}': '198.51.100.1' }), pkt.header('From', ' x@y')), [SMFIC.OPTNEG, SMFIR.CONTINUE]);
    assert.deepEqual(await h.feed(pkt.eob()), [SMFIR.CONTINUE]);
    assert.equal(h.seen[0]!.macro('client_addr'), '198.51.100.1');
    assert.equal(h.seen[0]!.mailFrom, '');
    await h.feed(pkt.quitNc());
    await h.feed(pkt.eob());
    assert.equal(h.seen[1]!.macro('client_addr'), undefined, 'connection macros gone after QUIT_NC');
    assert.deepEqual(await h.feed(pkt.quit()), [-1]);
  });

  test('over the buffering cap: headers and body prefix kept, size still counts everything', async () => {
    const h = harness([{ type: 'continue' }], 4096);
    const body = Buffer.alloc(200_000, 0x61);
    const headers: [string, string][] = [['From', ' a@example.jp'], ['Subject', ' big']];
    await h.feed(...NEGOTIATED);
    await h.feed(
      pkt.macro('M', { '{auth_authen}': 'a' }),
      pkt.mail('<a@example.jp>'),
      pkt.rcpt('<b@c>'),
      ...headers.map(([n, v]) => pkt.header(n, v)),
      pkt.eoh(),
      pkt.body(body.subarray(0, 65535)),
      pkt.body(body.subarray(65535, 131070)),
      pkt.body(body.subarray(131070)),
      pkt.eob(),
    );
    const m = h.seen[0]!;
    assert.equal(m.truncated, true);
    assert.equal(m.raw.length, 4096);
    const head = 'From: a@example.jp\r\nSubject: big\r\n\r\n';
    assert.equal(m.size, head.length + 200_000);
    assert.ok(m.raw.toString().startsWith(head + 'aaaa'));
    assert.equal(m.headers.length, 2);
  });

  test('headers past the cap are counted, not kept', async () => {
    const h = harness([{ type: 'continue' }], 4096);
    await h.feed(pkt.optneg());
    const many = Array.from({ length: 1000 }, (_, i) => pkt.header(`X-H${i}`, ' value'));
    await h.feed(pkt.mail('<a@b>'), ...many, pkt.eob());
    assert.ok(h.seen[0]!.headers.length < 300);
    assert.equal(h.seen[0]!.raw.length, 4096);
  });

  test('malformed payloads throw MilterPayloadError', async () => {
    for (const bad of [
      Buffer.from([0, 0, 0, 3, SMFIC.MAIL, 0x61, 0x62]), // unterminated
      Buffer.from([0, 0, 0, 1, SMFIC.MAIL]), // no address
      Buffer.from([0, 0, 0, 3, SMFIC.HEADER, 0x61, 0]), // name without value
      Buffer.from([0, 0, 0, 4, SMFIC.CONNECT, 0x68, 0, 0x34]), // truncated connect
      Buffer.from([0, 0, 0, 2, SMFIC.DATA, 0x61]), // DATA with payload
    ]) {
      const h = harness();
      await h.feed(pkt.optneg());
      assert.throws(() => h.session.handle(packet(bad)), MilterPayloadError, bad.toString('hex'));
    }
  });
});

describe('milter session: end-of-message actions', () => {
  test('headers get a leading space under HDR_LEADSPC, none without; quarantine then continue', async () => {
    const actions: EomAction[] = [
      { type: 'quarantine', reason: 'why' },
      { type: 'addHeader', name: 'X-Fumidai-Pool', value: 'suspect' },
      { type: 'continue' },
    ];
    const h = harness(actions);
    const r = await h.replies(pkt.optneg(), pkt.mail('<a@b>'), pkt.eob());
    assert.deepEqual(r.slice(2).map((b) => b[4]), [SMFIR.QUARANTINE, SMFIR.ADDHEADER, SMFIR.CONTINUE]);
    assert.equal(r[3]!.subarray(5).toString(), 'X-Fumidai-Pool\0 suspect\0');
    const h2 = harness(actions);
    const r2 = await h2.replies(pkt.optneg(6, 0x1ff, 0), pkt.mail('<a@b>'), pkt.eob());
    assert.equal(r2[3]!.subarray(5).toString(), 'X-Fumidai-Pool\0suspect\0');
  });

  test('an MTA that did not allow quarantine gets TEMPFAIL (fail safe); no ADDHDRS: header left out', async () => {
    const h = harness([{ type: 'quarantine', reason: 'x' }, { type: 'continue' }]);
    assert.deepEqual(await h.feed(pkt.optneg(6, SMFIF.ADDHDRS, 0x1fffff), pkt.eob()), [SMFIC.OPTNEG, SMFIR.TEMPFAIL]);
    const h2 = harness([{ type: 'addHeader', name: 'X', value: 'y' }, { type: 'continue' }]);
    assert.deepEqual(await h2.feed(pkt.optneg(6, SMFIF.QUARANTINE, 0x1fffff), pkt.eob()), [SMFIC.OPTNEG, SMFIR.CONTINUE]);
  });

  test('reply, reject, tempfail, discard and accept are final', async () => {
    for (const [a, cmd] of [
      [{ type: 'reply', text: '550 5.7.1 no' }, SMFIR.REPLYCODE],
      [{ type: 'reject' }, SMFIR.REJECT],
      [{ type: 'tempfail' }, SMFIR.TEMPFAIL],
      [{ type: 'discard' }, SMFIR.DISCARD],
      [{ type: 'accept' }, SMFIR.ACCEPT],
    ] as const) {
      const h = harness([{ type: 'addHeader', name: 'X', value: 'y' }, a]);
      const got = await h.feed(pkt.optneg(), pkt.eob());
      assert.equal(got.at(-1), cmd);
    }
  });

  test('a failing decision tempfails the message and keeps the connection', async () => {
    const session = new MilterSession({
      maxMessageBytes: 1024,
      onMessage: () => Promise.reject(new Error('boom')),
    });
    session.handle(packet(pkt.optneg()));
    const r = await (session.handle(packet(pkt.eob())) as Promise<readonly Buffer[]>);
    assert.equal(r[0]![4], SMFIR.TEMPFAIL);
  });
});
