// The milter codec against the byte-exact test vectors of mta-protocols.md §2.9, and
// the framing decoder against what a hostile peer can send.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  CONTINUE,
  encodeAddHeader,
  encodeOptneg,
  encodePacket,
  encodeQuarantine,
  encodeReplyCode,
  formatReply,
  MilterFrameDecoder,
  MilterFrameError,
  MilterPayloadError,
  parseArgs,
  parseConnect,
  parseHeader,
  parseMacro,
  parseOptneg,
  SMFIC,
  SMFIF,
  SMFIM,
  SMFIP,
} from '../../src/doors/milter/codec.ts';

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

/** Decodes exactly one packet from `bytes`. */
function one(bytes: Buffer): { cmd: number; data: Buffer } {
  const packets = new MilterFrameDecoder(1 << 20).push(bytes);
  assert.equal(packets.length, 1);
  return packets[0]!;
}

describe('milter codec: §2.9 test vectors', () => {
  test('MTA OPTNEG (Postfix v6) decodes to version 6, actions 0x1FF, protocol 0x1FFFFF', () => {
    const p = one(hex('00 00 00 0d 4f 00 00 00 06 00 00 01 ff 00 1f ff ff'));
    assert.equal(p.cmd, SMFIC.OPTNEG);
    assert.deepEqual(parseOptneg(p.data), { version: 6, actions: 0x1ff, protocol: 0x1fffff });
  });

  test('milter OPTNEG reply with symbol lists is byte-exact', () => {
    const expected = hex(`00 00 00 51 4f 00 00 00 06 00 00 01 31 00 10 05 80 00 00 00 00 7b 64 61 65 6d 6f 6e 5f 6e 61
      6d 65 7d 20 6a 00 00 00 00 02 7b 61 75 74 68 5f 61 75 74 68 65 6e 7d 20 7b 61 75 74 68 5f 74
      79 70 65 7d 20 7b 6d 61 69 6c 5f 61 64 64 72 7d 00 00 00 00 05 69 00`);
    const actions = SMFIF.ADDHDRS | SMFIF.CHGHDRS | SMFIF.QUARANTINE | SMFIF.SETSYMLIST;
    const protocol = SMFIP.NOUNKNOWN | SMFIP.NR_HDR | SMFIP.SKIP | SMFIP.HDR_LEADSPC;
    assert.equal(actions, 0x131);
    assert.equal(protocol, 0x100580);
    const got = encodeOptneg({
      version: 6,
      actions,
      protocol,
      symlists: [
        [SMFIM.CONNECT, '{daemon_name} j'],
        [SMFIM.ENVFROM, '{auth_authen} {auth_type} {mail_addr}'],
        [SMFIM.EOM, 'i'],
      ],
    });
    assert.deepEqual(got, expected);
  });

  test('MACRO for C decodes to j and {daemon_name}', () => {
    const p = one(hex(`00 00 00 2d 44 43 6a 00 6d 78 2e 65 78 61 6d 70 6c 65 2e 6e 65 74 00 7b 64 61 65 6d 6f 6e 5f
      6e 61 6d 65 7d 00 4f 52 49 47 49 4e 41 54 49 4e 47 00`));
    assert.equal(p.cmd, SMFIC.MACRO);
    assert.deepEqual(parseMacro(p.data), {
      stage: SMFIC.CONNECT,
      macros: [
        ['j', 'mx.example.net'],
        ['{daemon_name}', 'ORIGINATING'],
      ],
    });
  });

  test('CONNECT decodes hostname, family, port and address', () => {
    const p = one(hex(`00 00 00 24 43 63 6c 69 65 6e 74 2e 65 78 61 6d 70 6c 65 2e 6f 72 67 00 34 c8 22 31 39 38 2e
      35 31 2e 31 30 30 2e 37 00`));
    assert.equal(p.cmd, SMFIC.CONNECT);
    assert.deepEqual(parseConnect(p.data), { hostname: 'client.example.org', family: 'inet', port: 51234, address: '198.51.100.7' });
  });

  test('MAIL decodes the address as typed and the ESMTP arguments', () => {
    const p = one(hex(`00 00 00 1f 4d 3c 61 6c 69 63 65 40 65 78 61 6d 70 6c 65 2e 63 6f 6d 3e 00 53 49 5a 45 3d 31
      32 33 34 00`));
    assert.equal(p.cmd, SMFIC.MAIL);
    assert.deepEqual(parseArgs(p.data, 'MAIL'), ['<alice@example.com>', 'SIZE=1234']);
  });

  test('HEADER decodes name and value', () => {
    const p = one(hex(`00 00 00 20 4c 46 72 6f 6d 00 41 6c 69 63 65 20 3c 61 6c 69 63 65 40 65 78 61 6d 70 6c 65 2e
      63 6f 6d 3e 00`));
    assert.deepEqual(parseHeader(p.data), ['From', 'Alice <alice@example.com>']);
  });

  test('EOB, CONTINUE, ABORT and QUIT', () => {
    assert.deepEqual(one(hex('00 00 00 01 45')), { cmd: SMFIC.BODYEOB, data: Buffer.alloc(0) });
    assert.deepEqual(CONTINUE, hex('00 00 00 01 63'));
    assert.deepEqual(one(hex('00 00 00 01 41')).cmd, SMFIC.ABORT);
    assert.deepEqual(one(hex('00 00 00 01 51')).cmd, SMFIC.QUIT);
  });

  test('REPLYCODE, ADDHEADER and QUARANTINE are byte-exact', () => {
    assert.deepEqual(
      encodeReplyCode('550 5.7.1 Sender address rejected'),
      hex(`00 00 00 23 79 35 35 30 20 35 2e 37 2e 31 20 53 65 6e 64 65 72 20 61 64 64 72 65 73 73 20 72
        65 6a 65 63 74 65 64 00`),
    );
    assert.deepEqual(
      encodeAddHeader('X-Outbound-Class', 'suspect'),
      hex('00 00 00 1a 68 58 2d 4f 75 74 62 6f 75 6e 64 2d 43 6c 61 73 73 00 73 75 73 70 65 63 74 00'),
    );
    assert.deepEqual(encodeQuarantine('suspected spam'), hex('00 00 00 10 71 73 75 73 70 65 63 74 65 64 20 73 70 61 6d 00'));
  });
});

describe('milter codec: framing', () => {
  test('packets split at any byte boundary are reassembled', () => {
    const stream = Buffer.concat([
      encodePacket(SMFIC.HEADER, Buffer.from('Subject\0hi\0')),
      encodePacket(SMFIC.EOH),
      encodePacket(SMFIC.BODY, Buffer.alloc(70_000, 0x61)),
      encodePacket(SMFIC.BODYEOB),
    ]);
    for (const step of [1, 2, 3, 5, 7, 4096, stream.length]) {
      const d = new MilterFrameDecoder(1 << 20);
      const got: number[] = [];
      let bodyBytes = 0;
      for (let i = 0; i < stream.length; i += step) {
        for (const p of d.push(stream.subarray(i, i + step))) {
          got.push(p.cmd);
          if (p.cmd === SMFIC.BODY) bodyBytes = p.data.length;
        }
      }
      assert.deepEqual(got, [SMFIC.HEADER, SMFIC.EOH, SMFIC.BODY, SMFIC.BODYEOB], `step ${step}`);
      assert.equal(bodyBytes, 70_000);
      assert.equal(d.pendingBytes, 0);
    }
  });

  test('length 0, a length above the limit and unknown commands are errors before buffering', () => {
    assert.throws(() => new MilterFrameDecoder(1024).push(hex('00 00 00 00 41')), MilterFrameError);
    assert.throws(() => new MilterFrameDecoder(1024).push(hex('7f ff ff ff 42')), /above the limit/);
    assert.throws(() => new MilterFrameDecoder(1024).push(hex('00 00 04 01 42')), /above the limit/);
    assert.throws(() => new MilterFrameDecoder(1024).push(hex('00 00 00 01 7a')), /unknown command 'z'/);
    assert.throws(() => new MilterFrameDecoder(1024).push(Buffer.from('GET / HTTP/1.1\r\n')), MilterFrameError);
  });

  test('an unfinished packet stays pending', () => {
    const d = new MilterFrameDecoder(1024);
    assert.deepEqual(d.push(hex('00 00 00 05 4c 41')), []);
    assert.equal(d.pendingBytes, 6);
  });
});

describe('milter codec: payloads', () => {
  test('truncated and unterminated payloads are errors, not exceptions', () => {
    assert.ok(parseOptneg(Buffer.alloc(11)) instanceof MilterPayloadError);
    assert.ok(parseConnect(Buffer.from('host')) instanceof MilterPayloadError);
    assert.ok(parseConnect(Buffer.from('host\0')) instanceof MilterPayloadError);
    assert.ok(parseConnect(Buffer.from('host\x004\x00')) instanceof MilterPayloadError);
    assert.ok(parseConnect(Buffer.from('host\x004\xc8\x22198.51.100.7')) instanceof MilterPayloadError);
    assert.ok(parseConnect(Buffer.from('host\x00X\xc8\x221.2.3.4\0')) instanceof MilterPayloadError);
    assert.ok(parseHeader(Buffer.from('From\0x')) instanceof MilterPayloadError);
    assert.ok(parseHeader(Buffer.from('From\0')) instanceof MilterPayloadError);
    assert.ok(parseArgs(Buffer.alloc(0), 'MAIL') instanceof MilterPayloadError);
    assert.ok(parseMacro(Buffer.alloc(0)) instanceof MilterPayloadError);
  });

  test('CONNECT: IPv6 (Sendmail prefix removed), unix socket and unknown family', () => {
    const port = Buffer.from([0x01, 0xbb]);
    assert.deepEqual(parseConnect(Buffer.concat([Buffer.from('h\x006'), port, Buffer.from('IPv6:2001:db8::1\0')])), {
      hostname: 'h',
      family: 'inet6',
      port: 443,
      address: '2001:db8::1',
    });
    assert.deepEqual(parseConnect(Buffer.concat([Buffer.from('localhost\0L'), Buffer.alloc(2), Buffer.from('/run/x.sock\0')])), {
      hostname: 'localhost',
      family: 'unix',
      port: 0,
      address: '/run/x.sock',
    });
    assert.deepEqual(parseConnect(Buffer.from('localhost\0U')), { hostname: 'localhost', family: 'unknown', port: 0, address: '' });
  });
});

describe('milter codec: formatReply', () => {
  test('a consistent reply passes through; % is doubled', () => {
    assert.equal(formatReply(550, '5.7.1', 'No, 100% sure'), '550 5.7.1 No, 100%% sure');
    assert.equal(formatReply(451, '4.3.0', 'later'), '451 4.3.0 later');
  });

  test('an enhanced code of the wrong class or shape is replaced by <class>.7.1', () => {
    assert.equal(formatReply(450, '5.7.1', 'x'), '450 4.7.1 x');
    assert.equal(formatReply(550, '4.7.1', 'x'), '550 5.7.1 x');
    assert.equal(formatReply(550, 'bogus', 'x'), '550 5.7.1 x');
    assert.equal(formatReply(550, undefined, undefined), '550 5.7.1');
  });

  test('codes outside 4xx/5xx are refused', () => {
    assert.ok(formatReply(250, '2.0.0', 'ok') instanceof Error);
    assert.ok(formatReply(600, '5.0.0', 'x') instanceof Error);
  });

  test('control characters become spaces; long UTF-8 text is cut on a character boundary', () => {
    assert.equal(formatReply(550, '5.7.1', 'a\r\nb\0c'), '550 5.7.1 a b c');
    const long = formatReply(550, '5.7.1', '送'.repeat(400)) as string;
    const text = long.slice('550 5.7.1 '.length);
    assert.ok(Buffer.byteLength(text) <= 900);
    assert.equal(text, '送'.repeat(300));
  });
});
