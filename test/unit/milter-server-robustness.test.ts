// The milter server over real sockets: a normal Postfix-like dialogue, then everything
// a broken or hostile peer can send. Each bad connection is closed; the process and
// every other connection keep working.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodePacket, SMFIC, SMFIR } from '../../src/doors/milter/codec.ts';
import { startMilterServer, type MilterServerHandle } from '../../src/doors/milter/server.ts';
import { MilterClient, pkt } from '../miltertest/client.ts';
import { fixture, type Fixture } from '../support/engine-fixture.ts';

describe('milter server', () => {
  let f: Fixture;
  let server: MilterServerHandle;
  let port: number;
  const dir = mkdtempSync(join(tmpdir(), 'fumidai-milter-'));
  const sock = join(dir, 'milter.sock');
  const warnings: string[] = [];

  before(async () => {
    f = fixture({
      milter: { listeners: [{ listen: '127.0.0.1:0' }, { listen: `unix:${sock}` }], packetTimeout: 1, maxPacketBytes: 262144 },
      limits: { windows: [{ name: 'minute', seconds: 60, messages: 3, recipients: 100 }] },
    });
    server = await startMilterServer(f.engine, f.config, { warn: (m) => warnings.push(m) });
    port = Number(server.addresses[0]!.split(':').pop());
  });
  after(async () => {
    await server.close();
    await f.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function client(): Promise<MilterClient> {
    const c = await MilterClient.connect({ host: '127.0.0.1', port });
    const neg = await c.negotiate();
    assert.equal(neg.cmd, SMFIC.OPTNEG);
    await c.hello();
    return c;
  }

  /** Asserts the server still serves a full transaction on a fresh connection. */
  async function stillServes(): Promise<void> {
    const c = await client();
    const r = await c.message({ login: 'healthy@example.jp' });
    assert.equal(r.final.cmd, SMFIR.CONTINUE);
    c.close();
  }

  test('several messages on one connection, ABORT after each, QUIT closes', async () => {
    const c = await client();
    for (let i = 0; i < 3; i++) {
      const r = await c.message({ login: 'alice@example.jp', queueId: `Q${i}` });
      assert.equal(r.final.cmd, SMFIR.CONTINUE);
      assert.equal(c.pending(), 0, 'no stray replies');
    }
    c.send(pkt.quit());
    await c.closed;
  });

  test('the engine decides at end of message: a suspended sender gets our 550 reply', async () => {
    await f.engine.suspendByOperator('mallory@example.jp' as never, 'op', 'test');
    const c = await client();
    const r = await c.message({ login: 'mallory@example.jp' });
    assert.equal(r.final.cmd, SMFIR.REPLYCODE);
    assert.match(r.reply!, /^550 5\.7\.1 .*Sending from this account is suspended/);
    c.close();
  });

  test('unix socket listener, usable by other users (Postfix runs as postfix)', async () => {
    assert.equal(statSync(sock).mode & 0o777 & 0o006, 0o006);
    const c = await MilterClient.connect({ path: sock });
    await c.negotiate();
    await c.hello();
    const r = await c.message({ login: 'alice@example.jp' });
    assert.equal(r.final.cmd, SMFIR.CONTINUE);
    c.close();
  });

  const hostile: [string, (c: MilterClient) => void][] = [
    ['length 0', (c) => c.send(Buffer.from([0, 0, 0, 0, 0x41]))],
    ['length 2^31', (c) => c.send(Buffer.from([0x80, 0, 0, 0, 0x42]))],
    ['length above maxPacketBytes', (c) => c.send(Buffer.from([0, 0x10, 0, 0, 0x42]))],
    ['unknown command byte', (c) => c.send(Buffer.from([0, 0, 0, 1, 0x7a]))],
    ['a reply byte sent as a command', (c) => c.send(Buffer.from([0, 0, 0, 1, SMFIR.CONTINUE]))],
    ['HTTP', (c) => c.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))],
    ['unterminated MAIL', (c) => c.send(encodePacket(SMFIC.MAIL, Buffer.from('<a@b>')))],
    ['truncated CONNECT', (c) => c.send(encodePacket(SMFIC.CONNECT, Buffer.from('h\x004')))],
    ['second OPTNEG', (c) => c.send(pkt.optneg())],
  ];
  for (const [name, send] of hostile) {
    test(`hostile input closes only that connection: ${name}`, async () => {
      const c = await client();
      send(c);
      await c.closed;
      await stillServes();
    });
  }

  test('a packet before OPTNEG closes the connection', async () => {
    const c = await MilterClient.connect({ host: '127.0.0.1', port });
    c.send(pkt.mail('<a@b>'));
    await c.closed;
  });

  test('a truncated packet left hanging is dropped after packetTimeout', async () => {
    const c = await client();
    const started = Date.now();
    c.send(Buffer.from([0, 0, 0, 100, SMFIC.BODY, 1, 2, 3]));
    await c.closed;
    assert.ok(Date.now() - started >= 900, 'waited for the packet timeout');
    assert.ok(warnings.some((w) => /incomplete packet/.test(w)));
  });

  test('a peer that disconnects mid-packet or mid-decision does not disturb the server', async () => {
    const c = await client();
    c.send(pkt.mail('<a@b>'), Buffer.from([0, 0, 0, 50, SMFIC.HEADER, 0x41]));
    c.close();
    const d = await client();
    d.send(pkt.macro('M', { '{auth_authen}': 'a@example.jp' }), pkt.mail('<a@b>'), pkt.eob());
    d.close();
    await stillServes();
  });

  test('fuzz: random frames after negotiation never crash the server', async () => {
    let seed = 42;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const cmds = Object.values(SMFIC);
    for (let round = 0; round < 60; round++) {
      const c = await client();
      const parts: Buffer[] = [];
      for (let i = 0; i < 1 + rnd(12); i++) {
        const len = rnd(40);
        const data = Buffer.from(Array.from({ length: len }, () => (rnd(4) === 0 ? 0 : rnd(256))));
        const cmd = cmds[rnd(cmds.length)]!;
        parts.push(cmd === SMFIC.QUIT || cmd === SMFIC.OPTNEG ? pkt.abort() : encodePacket(cmd, data));
      }
      if (rnd(3) === 0) parts.push(Buffer.from(Array.from({ length: rnd(20) }, () => rnd(256))));
      c.send(...parts);
      await new Promise((r) => setTimeout(r, 5));
      c.close();
    }
    await stillServes();
  });

  test('many connections in parallel each get their own answers', async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => client()));
    const results = await Promise.all(clients.map((c, i) => c.message({ login: `user${i}@example.jp`, queueId: `P${i}` })));
    for (const r of results) assert.equal(r.final.cmd, SMFIR.CONTINUE);
    for (const c of clients) c.close();
  });

  test('a 3 MB body in 64 KiB chunks passes (bounded buffering)', async () => {
    const c = await client();
    const r = await c.message({ login: 'big@example.jp', body: Buffer.alloc(3 * 1024 * 1024, 0x61) });
    assert.equal(r.final.cmd, SMFIR.CONTINUE);
    c.close();
  });
});
