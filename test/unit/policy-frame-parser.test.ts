import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PolicyFrameError, PolicyFrameParser } from '../../src/doors/policy/frame-parser.ts';

const REQUEST = 'request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=alice\nclient_address=192.0.2.1\n\n';

describe('policy frame parser', () => {
  it('reads requests split across chunks at every byte, and several in one chunk', () => {
    const bytes = Buffer.from(REQUEST + REQUEST);
    for (let cut = 1; cut < bytes.length; cut++) {
      const p = new PolicyFrameParser(4096);
      const got = [...p.push(bytes.subarray(0, cut)), ...p.push(bytes.subarray(cut))];
      assert.equal(got.length, 2, `cut at ${cut}`);
      assert.equal(got[1]!.get('sasl_username'), 'alice');
      assert.equal(p.pendingBytes, 0);
    }
  });

  it('keeps the first of repeated attributes, empty values, and values with "=" in them', () => {
    const [r] = new PolicyFrameParser(4096).push(Buffer.from('request=smtpd_access_policy\nsender=\nrecipient=a=b@example.com\nsasl_username=first\nsasl_username=second\n\n'));
    assert.equal(r!.get('sender'), '');
    assert.equal(r!.get('recipient'), 'a=b@example.com');
    assert.equal(r!.get('sasl_username'), 'first');
  });

  it('keeps UTF-8 values (SMTPUTF8 addresses)', () => {
    const [r] = new PolicyFrameParser(4096).push(Buffer.from('request=smtpd_access_policy\nsender=山田@例え.jp\n\n'));
    assert.equal(r!.get('sender'), '山田@例え.jp');
  });

  for (const [name, input] of [
    ['a line without "="', 'request=smtpd_access_policy\ngarbage\n\n'],
    ['an empty name', '=value\n\n'],
    ['a NUL byte', 'request=smtpd\0access\n\n'],
    ['binary bytes', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n'],
    ['an empty request', '\n\n'],
  ] as const) {
    it(`refuses ${name}`, () => {
      assert.throws(() => new PolicyFrameParser(4096).push(Buffer.from(input, 'latin1')), PolicyFrameError);
    });
  }

  it('refuses an oversized request, finished or not', () => {
    const big = `request=smtpd_access_policy\nx=${'a'.repeat(5000)}\n`;
    assert.throws(() => new PolicyFrameParser(4096).push(Buffer.from(big)), /larger than 4096/);
    assert.throws(() => new PolicyFrameParser(4096).push(Buffer.from(`${big}\n`)), /larger than 4096/);
  });
});
