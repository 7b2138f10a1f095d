import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeBytes, decodeGuess } from '../../src/classify/charset.ts';
import { decodeEncodedWords, decodeQuotedPrintable, header, parseMail, parseParams, stripMboxFrom } from '../../src/classify/mime.ts';

// Japanese samples built byte for byte (Node has no encoder for these charsets):
// "日本語のメールです。キャンペーン当選" in each encoding, made with Python's codecs.
const TEXT = '日本語のメールです。キャンペーン当選';
const JIS = Buffer.from('1b2442467c4b5c386c244e2561213c256b244724392123252d25632573255a213c25734576412a1b2842', 'hex');
const SJIS = Buffer.from('93fa967b8cea82cc8381815b838b82c582b78142834c838383938379815b839393969149', 'hex');
const EUC = Buffer.from('c6fccbdcb8eca4cea5e1a1bca5eba4c7a4b9a1a3a5ada5e3a5f3a5daa1bca5f3c5f6c1aa', 'hex');

function mail(headers: string, body: Buffer | string): Buffer {
  return Buffer.concat([Buffer.from(headers.replace(/\n/g, '\r\n') + '\r\n\r\n', 'latin1'), typeof body === 'string' ? Buffer.from(body, 'latin1') : body]);
}

describe('charsets', () => {
  it('this Node decodes ISO-2022-JP, Shift_JIS and EUC-JP (full ICU)', () => {
    assert.equal(new TextDecoder('iso-2022-jp').decode(JIS), TEXT);
    assert.equal(decodeBytes(SJIS, 'Shift_JIS'), TEXT);
    assert.equal(decodeBytes(EUC, 'EUC-JP'), TEXT);
    assert.equal(decodeBytes(SJIS, 'cp932'), TEXT, 'Windows label');
    assert.equal(decodeBytes(JIS, 'ISO-2022-JP-2'), TEXT, 'label Node lacks maps to ISO-2022-JP');
  });

  it('guesses unlabelled 8-bit Japanese text', () => {
    assert.equal(decodeGuess(JIS), TEXT);
    assert.equal(decodeGuess(SJIS), TEXT);
    assert.equal(decodeGuess(EUC), TEXT);
    assert.equal(decodeGuess(Buffer.from(TEXT, 'utf8')), TEXT);
    assert.equal(decodeBytes(Buffer.from(TEXT, 'utf8'), 'x-unknown'), TEXT);
  });
});

describe('MIME', () => {
  it('decodes RFC 2047 encoded words: B and Q, ISO-2022-JP, Shift_JIS, UTF-8, adjacent words joined', () => {
    assert.equal(decodeEncodedWords('=?ISO-2022-JP?B?GyRCN29MPiVGJTklSBsoQg==?='), '件名テスト');
    assert.equal(decodeEncodedWords('=?shift_jis?B?gqiSbYLngrk=?= (info)'), 'お知らせ (info)');
    assert.equal(decodeEncodedWords('=?UTF-8?Q?caf=C3=A9_au_lait?='), 'café au lait');
    assert.equal(decodeEncodedWords('=?UTF-8?B?44GK?= =?UTF-8?B?55+l?=\r\n =?UTF-8?B?44KJ44Gb?='), 'お知らせ');
    assert.equal(decodeEncodedWords('plain =?bogus?B?AAAA?= text').startsWith('plain '), true);
  });

  it('reads an ISO-2022-JP message (7bit body, encoded Subject)', () => {
    const m = parseMail(mail('From: =?ISO-2022-JP?B?GyRCN29MPiVGJTklSBsoQg==?= <a@example.jp>\nSubject: =?ISO-2022-JP?B?GyRCN29MPiVGJTklSBsoQg==?=\nContent-Type: text/plain; charset=ISO-2022-JP\nContent-Transfer-Encoding: 7bit', JIS));
    assert.equal(header(m.headers, 'subject'), '件名テスト');
    assert.equal(header(m.headers, 'FROM'), '件名テスト <a@example.jp>');
    assert.equal(m.leaves[0]!.text, TEXT);
  });

  it('reads base64 Shift_JIS and quoted-printable EUC-JP parts of a multipart/alternative message', () => {
    const qp = [...EUC].map((b) => `=${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
    const body = [
      '--b1',
      'Content-Type: text/plain; charset="Shift_JIS"',
      'Content-Transfer-Encoding: base64',
      '',
      SJIS.toString('base64'),
      '--b1',
      'Content-Type: text/html; charset=euc-jp',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      `<p>${qp.slice(0, 60)}=\r\n${qp.slice(60)}</p>`,
      '--b1--',
      '',
    ].join('\r\n');
    const m = parseMail(mail('Subject: x\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="b1"', body));
    assert.equal(m.multiparts, 1);
    assert.deepEqual(m.leaves.map((l) => [l.type, l.charset, l.encoding]), [['text/plain', 'shift_jis', 'base64'], ['text/html', 'euc-jp', 'quoted-printable']]);
    assert.equal(m.leaves[0]!.text, TEXT);
    assert.equal(m.leaves[1]!.text, `<p>${TEXT}</p>`);
  });

  it('reads raw 8-bit UTF-8 headers, attachments with RFC 2231 names, nested messages', () => {
    const body = [
      '--x',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      'こんにちは',
      '--x',
      "Content-Type: application/pdf; name*=UTF-8''%E8%AB%8B%E6%B1%82%E6%9B%B8.pdf",
      'Content-Disposition: attachment',
      'Content-Transfer-Encoding: base64',
      '',
      'JVBERi0xLjQK',
      '--x',
      'Content-Type: message/rfc822',
      '',
      'Subject: inner',
      'Content-Type: text/plain',
      '',
      'inner body',
      '--x--',
    ].join('\r\n');
    const raw = Buffer.concat([Buffer.from('Subject: ', 'latin1'), Buffer.from('日本語の件名', 'utf8'), Buffer.from('\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n', 'latin1'), Buffer.from(body, 'utf8')]);
    const m = parseMail(raw);
    assert.equal(header(m.headers, 'subject'), '日本語の件名');
    assert.equal(m.leaves.length, 3);
    assert.equal(m.leaves[0]!.text, 'こんにちは');
    assert.deepEqual([m.leaves[1]!.type, m.leaves[1]!.filename, m.leaves[1]!.attachment, m.leaves[1]!.text], ['application/pdf', '請求書.pdf', true, null]);
    assert.equal(m.leaves[2]!.text, 'inner body');
  });

  it('parameters: quoted, continued (RFC 2231), case-insensitive names', () => {
    const p = parseParams('text/plain; Charset="ISO-2022-JP"; format=flowed; title*0*=us-ascii\'en\'This%20is; title*1=" fun"');
    assert.equal(p.type, 'text/plain');
    assert.equal(p.params['charset'], 'ISO-2022-JP');
    assert.equal(p.params['format'], 'flowed');
    assert.equal(p.params['title'], 'This is fun');
  });

  it('quoted-printable: soft breaks, bad escapes kept, Q form underscores', () => {
    assert.equal(decodeQuotedPrintable('a=3Db=\r\nc =ZZ').toString('latin1'), 'a=bc =ZZ');
    assert.equal(decodeQuotedPrintable('a_b', true).toString('latin1'), 'a b');
  });

  it('never throws on malformed input and bounds its work', () => {
    for (const raw of ['', '\r\n', 'no header block', 'Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n--z\r\n', 'Content-Type: multipart/mixed\r\n\r\nno boundary', '\x00\xff\xfe']) {
      assert.doesNotThrow(() => parseMail(Buffer.from(raw, 'latin1')));
    }
    const many = `Content-Type: multipart/mixed; boundary=q\r\n\r\n${'--q\r\nContent-Type: text/plain\r\n\r\nx\r\n'.repeat(500)}--q--\r\n`;
    const m = parseMail(Buffer.from(many));
    assert.equal(m.leaves.length, 64);
    assert.equal(m.truncated, true);
  });

  it('strips a leading mbox From line only', () => {
    assert.equal(stripMboxFrom(Buffer.from('From a@b Thu Aug 22 13:17:22 2002\nSubject: x\n\nbody')).toString(), 'Subject: x\n\nbody');
    assert.equal(stripMboxFrom(Buffer.from('Subject: x\n\nFrom here')).toString(), 'Subject: x\n\nFrom here');
  });
});
