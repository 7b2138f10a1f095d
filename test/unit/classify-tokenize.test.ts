import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { digestHtml } from '../../src/classify/html.ts';
import { tokens } from '../../src/classify/tokenize.ts';
import { extractUrls, registrableDomain } from '../../src/classify/urls.ts';
import { fingerprints, letters } from '../../src/classify/fingerprint.ts';

describe('tokenisation', () => {
  it('English: lower-case words, inner apostrophes and dots kept, numbers as shapes', () => {
    assert.deepEqual(tokens("Don't MISS this: 1000000 dollars at e.g. 42 places"), ["don't", 'miss', 'this', '#7', 'dollars', 'at', 'e.g', '42', 'places']);
  });

  it('Japanese without spaces: character bigrams, katakana runs as words', () => {
    assert.deepEqual(tokens('お得なキャンペーン'), ['お得', '得な', 'なキ', 'キャ', 'ャン', 'ンペ', 'ペー', 'ーン', 'キャンペーン']);
    assert.deepEqual(tokens('当選'), ['当選']);
    assert.deepEqual(tokens('円'), ['円']);
  });

  it('mixed scripts split at the script boundary', () => {
    assert.deepEqual(tokens('iPhone当選!'), ['iphone', '当選']);
  });

  it('full-width Latin and half-width katakana are normalised (NFKC)', () => {
    assert.deepEqual(tokens('ＦＲＥＥ'), ['free']);
    assert.deepEqual(tokens('ｷｬﾝﾍﾟｰﾝ'), tokens('キャンペーン'));
  });
});

describe('HTML, URLs, fingerprints', () => {
  it('HTML: visible text, links with anchor text, tags and traits; style and script dropped', () => {
    const d = digestHtml('<html><style>p{color:red}</style><p>Hello&nbsp;<b>world</b> &#x65E5;&amp;</p><a href="http://evil.example.ru/x?y=1">http://www.mybank.co.jp</a><img src=x><div style="display:none">hidden</div><script>alert(1)</script></html>');
    assert.match(d.text, /Hello\s+world\s+日&/);
    assert.doesNotMatch(d.text, /color|alert/);
    assert.deepEqual(d.links, [{ href: 'http://evil.example.ru/x?y=1', text: 'http://www.mybank.co.jp' }]);
    assert.equal(d.images, 1);
    assert.ok(d.traits.includes('hidden-text') && d.traits.includes('script'));
  });

  it('URLs: registrable domains, anchor mismatch, IP hosts', () => {
    assert.equal(registrableDomain('www.shop.example.co.jp'), 'example.co.jp');
    assert.equal(registrableDomain('a.b.example.com'), 'example.com');
    const u = extractUrls('see http://192.0.2.7/login and www.example.com/a.', [{ href: 'http://evil.example.ru/x', text: 'https://www.mybank.co.jp/' }]);
    assert.deepEqual(u.map((x) => [x.domain, x.ipHost, x.mismatch]), [['example.ru', false, true], ['192.0.2.7', true, false], ['example.com', false, false]]);
  });

  it('fingerprints: same text up to digits, spacing and case gives the same body print; short texts none', () => {
    const base = { subject: '', urls: [] };
    const a = fingerprints({ ...base, body: 'dear customer 1234, your account needs verification. click the link below to keep your mailbox active today' });
    const b = fingerprints({ ...base, body: 'dear  customer 98, your account needs verification.\nclick the link below to keep your mailbox active today' });
    assert.ok(a.body !== null && a.body === b.body);
    assert.equal(fingerprints({ ...base, body: 'see you at 5' }).body, null);
    assert.equal(letters('日本語 abc 123'), '日本語abc');
  });
});
