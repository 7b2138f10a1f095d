import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startPolicyServer, type PolicyServerHandle } from '../../src/doors/policy/server.ts';
import { fixture, type Fixture } from '../support/engine-fixture.ts';

// Fuzz and robustness: random, truncated and hostile frames against the real server.
// Whatever one client sends, the server keeps answering others correctly, never
// replies to a frame it could not read, and never crashes.

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const GOOD = (user: string, state = 'RCPT', instance = 'i1'): string =>
  `request=smtpd_access_policy\nprotocol_state=${state}\nprotocol_name=ESMTP\nclient_address=126.1.1.1\nsasl_method=PLAIN\nsasl_username=${user}\nsender=${user}@example.jp\nrecipient=x@example.com\nrecipient_count=1\ninstance=${instance}\nsize=100\n\n`;

/** Sends bytes, then reads until the server replies one full answer, closes, or `ms` pass. */
function exchange(port: number, payload: Buffer | string, ms = 400): Promise<{ reply: string; closed: boolean }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let reply = '';
    let closed = false;
    const finish = (): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ reply, closed });
    };
    const timer = setTimeout(finish, ms);
    sock.on('data', (d) => {
      reply += d.toString('utf8');
      if (reply.endsWith('\n\n')) finish();
    });
    sock.on('close', () => {
      closed = true;
      finish();
    });
    sock.on('error', () => {});
    sock.write(payload);
  });
}

describe('policy server robustness', () => {
  let f: Fixture;
  let server: PolicyServerHandle;
  let port: number;
  const warnings: string[] = [];

  before(async () => {
    f = fixture({ policy: { listeners: [{ listen: '127.0.0.1:0' }], maxRequestBytes: 2048 } });
    server = await startPolicyServer(f.engine, f.config, { warn: (m) => warnings.push(m) });
    port = Number(server.addresses[0]!.split(':').pop());
  });
  after(async () => {
    await server.close();
    await f.close();
  });

  it('answers a well-formed request with one action line', async () => {
    const { reply } = await exchange(port, GOOD('alice'));
    assert.equal(reply, 'action=DUNNO\n\n');
  });

  it('answers requests of one persistent connection in order, one reply each', async () => {
    const replies = await new Promise<string>((resolve) => {
      const sock = net.connect(port, '127.0.0.1');
      let got = '';
      sock.on('data', (d) => {
        got += d.toString();
        if (got.split('\n\n').length > 3) {
          sock.destroy();
          resolve(got);
        }
      });
      sock.write(GOOD('bob', 'RCPT', 'a') + GOOD('bob', 'END-OF-MESSAGE', 'a') + GOOD('', 'RCPT', 'b'));
    });
    const actions = replies.split('\n\n').filter(Boolean);
    assert.equal(actions.length, 3);
    assert.equal(actions[0], 'action=DUNNO');
    assert.equal(actions[1], 'action=DUNNO');
    assert.match(actions[2]!, /^action=530 5\.7\.0 /);
  });

  it('drops a connection that sends garbage, without replying', async () => {
    for (const bad of ['hello\n\n', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', '\x00\x01\x02\n\n', `x=${'y'.repeat(5000)}`, 'request=something_else\n\n']) {
      const { reply, closed } = await exchange(port, bad);
      assert.equal(reply, '', `no reply to ${JSON.stringify(bad.slice(0, 20))}`);
      assert.ok(closed, 'connection closed');
    }
    assert.ok(warnings.length >= 5, 'each drop is logged');
  });

  it('waits for the rest of a truncated request and answers nothing until it is complete', async () => {
    const full = GOOD('carol');
    for (let cut = 1; cut < full.length - 1; cut += 17) {
      const { reply, closed } = await exchange(port, full.slice(0, cut), 60);
      assert.equal(reply, '');
      assert.equal(closed, false);
    }
  });

  it('survives 2,000 random and mutated frames and still answers correctly afterwards', async () => {
    const rand = rng(20261129);
    const base = Buffer.from(GOOD('dave'));
    const clients: Promise<unknown>[] = [];
    for (let i = 0; i < 2000; i++) {
      let payload: Buffer;
      const kind = i % 4;
      if (kind === 0) {
        payload = Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 300) }, () => Math.floor(rand() * 256)));
      } else if (kind === 1) {
        payload = base.subarray(0, Math.floor(rand() * base.length));
      } else if (kind === 2) {
        payload = Buffer.from(base);
        for (let k = 0; k < 3; k++) payload[Math.floor(rand() * payload.length)] = Math.floor(rand() * 256);
      } else {
        payload = Buffer.concat([base, Buffer.from('\n\n\n=\n'), base.subarray(0, 40)]);
      }
      clients.push(exchange(port, payload, 30));
      if (clients.length >= 50) await Promise.all(clients.splice(0));
    }
    await Promise.all(clients);
    const { reply } = await exchange(port, GOOD('erin'));
    assert.equal(reply, 'action=DUNNO\n\n');
  });
});
