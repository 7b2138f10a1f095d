import { digestHtml } from './html.ts';
import { header, type HeaderField, type ParsedMail } from './mime.ts';
import { normaliseText, tokenize, type TokenSink } from './tokenize.ts';
import { extractUrls, urlFeatures, type UrlInfo } from './urls.ts';

// Message -> hashed binary features. Every feature is a namespaced string ("w:free",
// "s:offer", "xm:outlook", "u-dom:example.com") hashed with FNV-1a into 2^bits buckets;
// a message is the set of its buckets. Namespaces keep the same word in the subject and
// in the body apart. See docs/classifier.md for the list and the reasons.
//
// Only headers that the sender's own software writes are used (Subject, From, To, Cc,
// Reply-To, Date, Message-ID, X-Mailer/User-Agent, MIME fields): on outgoing mail that
// is all there is, and relay headers (Received, List-*, Delivered-To) in a training
// corpus teach where it was collected, not what spam is.

export const FNV_OFFSET = 0x811c9dc5;

export function fnv(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export interface FeatureOptions {
  /** log2 of the number of hash buckets. */
  readonly bits: number;
  /** Adjacent word pairs ("w2:click here") besides single words. */
  readonly wordPairs: boolean;
}

export const DEFAULT_FEATURES: FeatureOptions = { bits: 20, wordPairs: true };

/** Collects the distinct buckets of one message; reused across messages (no per-message allocation of the table). */
export class FeatureSet {
  readonly mask: number;
  private readonly stamp: Uint32Array;
  private gen = 0;
  private idx: Uint32Array = new Uint32Array(4096);
  count = 0;
  /** When set, bucket -> feature name, for explanations and tests. */
  names: Map<number, string> | null = null;

  constructor(bits: number) {
    this.mask = (1 << bits) - 1;
    this.stamp = new Uint32Array(1 << bits);
  }

  begin(): void {
    this.gen++;
    if (this.gen === 0xffffffff) {
      this.stamp.fill(0);
      this.gen = 1;
    }
    this.count = 0;
  }

  addHash(h: number, name?: string): void {
    const b = h & this.mask;
    if (this.stamp[b] === this.gen) return;
    this.stamp[b] = this.gen;
    if (this.count === this.idx.length) {
      const n = new Uint32Array(this.idx.length * 2);
      n.set(this.idx);
      this.idx = n;
    }
    this.idx[this.count++] = b;
    if (this.names !== null && name !== undefined) this.names.set(b, name);
  }

  add(ns: number, s: string, nsName?: string): void {
    this.addHash(fnv(ns, s), this.names !== null ? `${nsName ?? ns}:${s}` : undefined);
  }

  /** The buckets of the current message (a copy). */
  indices(): Uint32Array {
    return this.idx.slice(0, this.count);
  }

  /** The buckets of the current message (a view, valid until the next begin()). */
  view(): Uint32Array {
    return this.idx.subarray(0, this.count);
  }
}

const NS = Object.fromEntries(
  ['w', 'w2', 'jp', 'kk', 'n', 's', 's2', 'sjp', 'h', 'xm', 'ct', 'cs', 'cte', 'att', 'tag', 'html', 'len', 'caps', 'u', 'stat', 'from', 'to'].map((n) => [n, fnv(FNV_OFFSET, n + ':')]),
) as Record<string, number>;

function bucket(n: number): string {
  return n <= 0 ? '0' : String(Math.min(20, Math.floor(Math.log2(n + 1))));
}

class TextSink implements TokenSink {
  prev = '';
  constructor(
    private readonly f: FeatureSet,
    private readonly word1: number,
    private readonly word2: number,
    private readonly jp: number,
    private readonly pairs: boolean,
  ) {}
  word(w: string): void {
    this.f.add(this.word1, w, 'w');
    if (this.pairs && this.prev !== '') this.f.addHash(fnv(fnv(this.word2, this.prev), ' ' + w), this.f.names ? `w2:${this.prev} ${w}` : undefined);
    this.prev = w;
  }
  bigram(p: string): void {
    this.f.add(this.jp, p, 'jp');
    this.prev = '';
  }
  katakana(r: string): void {
    this.f.add(NS.kk!, r, 'kk');
  }
  number(s: string): void {
    this.f.add(NS.n!, s, 'n');
    this.prev = '';
  }
}

/** Text of the message as the classifier reads it: plain parts, else the HTML parts' text. */
export interface MessageText {
  readonly subject: string;
  /** Normalised (NFKC where needed, lower case) body text. */
  readonly body: string;
  readonly urls: readonly UrlInfo[];
}

function addressCount(v: string | undefined): number {
  if (v === undefined || v.trim() === '') return 0;
  return v.split(',').filter((x) => x.includes('@')).length;
}

function addrDomain(v: string | undefined): string | null {
  if (v === undefined) return null;
  const m = /@([a-z0-9.-]+)/i.exec(v);
  return m ? m[1]!.toLowerCase() : null;
}

function headerTraits(f: FeatureSet, h: readonly HeaderField[]): void {
  const H = NS.h!;
  const mid = header(h, 'message-id');
  if (mid === undefined) f.add(H, 'no-message-id');
  else if (!/^<[^<>@\s]+@[^<>@\s]+>$/.test(mid.trim())) f.add(H, 'odd-message-id');
  const date = header(h, 'date');
  if (date === undefined) f.add(H, 'no-date');
  else if (Number.isNaN(Date.parse(date.replace(/\([^)]*\)/g, '')))) f.add(H, 'bad-date');
  if (header(h, 'mime-version') === undefined) f.add(H, 'no-mime-version');
  const from = header(h, 'from');
  if (from === undefined) f.add(H, 'no-from');
  else {
    const addr = /<([^>]*)>/.exec(from)?.[1] ?? from;
    const local = addr.split('@')[0] ?? '';
    if (/\d{3,}/.test(local)) f.add(NS.from!, 'digits-local');
    if (!from.includes('<')) f.add(NS.from!, 'bare-address');
    const name = from.split('<')[0]!.replace(/"/g, '').trim();
    if (name.includes('@')) f.add(NS.from!, 'address-in-name');
    if (name !== '' && name === name.toUpperCase() && /[A-Z]{3}/.test(name)) f.add(NS.from!, 'caps-name');
    const rt = header(h, 'reply-to');
    if (rt !== undefined) f.add(H, addrDomain(rt) !== addrDomain(from) ? 'reply-to-other-domain' : 'reply-to-same-domain');
    const midDomain = mid !== undefined ? /@([^>\s]+)/.exec(mid)?.[1]?.toLowerCase() : undefined;
    const fromDomain = addrDomain(from);
    if (midDomain !== undefined && fromDomain !== null && !midDomain.endsWith(fromDomain.split('.').slice(-2).join('.'))) f.add(H, 'message-id-other-domain');
  }
  const to = header(h, 'to');
  if (to === undefined) f.add(NS.to!, 'none');
  else {
    f.add(NS.to!, `n${bucket(addressCount(to))}`);
    if (/undisclosed|recipient list suppressed/i.test(to)) f.add(NS.to!, 'undisclosed');
  }
  if (header(h, 'cc') !== undefined) f.add(NS.to!, `cc${bucket(addressCount(header(h, 'cc')))}`);
  if (header(h, 'bcc') !== undefined) f.add(NS.to!, 'bcc-header');
  const mailer = header(h, 'x-mailer') ?? header(h, 'user-agent');
  if (mailer === undefined) f.add(NS.xm!, '(none)');
  else for (const t of mailer.toLowerCase().match(/[a-z][a-z0-9]*/g)?.slice(0, 6) ?? []) f.add(NS.xm!, t);
  const prio = header(h, 'x-priority');
  if (prio !== undefined) f.add(H, `x-priority-${prio.trim().charAt(0)}`);
  if (header(h, 'x-msmail-priority') !== undefined) f.add(H, 'x-msmail-priority');
  if (header(h, 'x-mimeole') !== undefined) f.add(H, 'x-mimeole');
}

function capsRatio(text: string): number {
  let up = 0;
  let low = 0;
  const n = Math.min(text.length, 20_000);
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c >= 65 && c <= 90) up++;
    else if (c >= 97 && c <= 122) low++;
  }
  return up + low < 20 ? -1 : up / (up + low);
}

/** Adds a message's features to `f` (which must have begun) and returns its text for fingerprints. */
export function messageFeatures(mail: ParsedMail, f: FeatureSet, opts: FeatureOptions = DEFAULT_FEATURES): MessageText {
  const h = mail.headers;
  headerTraits(f, h);

  const subjectRaw = header(h, 'subject') ?? '';
  if (subjectRaw.trim() === '') f.add(NS.h!, 'no-subject');
  const subject = normaliseText(subjectRaw);
  tokenize(subject, new TextSink(f, NS.s!, NS.s2!, NS.sjp!, opts.wordPairs));
  if (/!{1,}/.test(subjectRaw)) f.add(NS.h!, 'subject-exclaim');
  const sc = capsRatio(subjectRaw);
  if (sc > 0.6 && subjectRaw.length > 10) f.add(NS.h!, 'subject-caps');

  const ct = header(h, 'content-type');
  f.add(NS.ct!, ct === undefined ? '(none)' : (ct.split(';')[0] ?? '').trim().toLowerCase());

  let plain = '';
  let html = '';
  let htmlText = '';
  const links: { href: string; text: string }[] = [];
  for (const leaf of mail.leaves) {
    if (leaf.charset !== null) f.add(NS.cs!, leaf.charset);
    if (leaf.attachment || leaf.text === null) {
      f.add(NS.att!, leaf.type);
      const ext = leaf.filename?.toLowerCase().match(/\.([a-z0-9]{1,5})$/)?.[1];
      if (ext !== undefined) f.add(NS.att!, `.${ext}`);
      continue;
    }
    f.add(NS.cte!, `${leaf.type}/${leaf.encoding}`);
    if (leaf.type === 'text/html') {
      const d = digestHtml(leaf.text);
      html += leaf.text;
      htmlText += d.text + '\n';
      links.push(...d.links);
      for (const t of d.tags) f.add(NS.tag!, t);
      for (const t of d.traits) f.add(NS.html!, t);
      f.add(NS.html!, `img${bucket(d.images)}`);
    } else {
      plain += leaf.text + '\n';
    }
  }
  if (html !== '' && plain === '') f.add(NS.stat!, 'html-only');
  if (html !== '' && plain !== '') f.add(NS.stat!, 'html-and-plain');
  f.add(NS.stat!, `leaves${bucket(mail.leaves.length)}`);
  if (mail.truncated) f.add(NS.stat!, 'truncated');

  // Words come from the plain part when there is one, else from the HTML's text;
  // reading both would count alternative parts twice.
  const visible = plain !== '' ? plain : htmlText;
  const body = normaliseText(visible);
  const n = tokenize(body, new TextSink(f, NS.w!, NS.w2!, NS.jp!, opts.wordPairs));
  f.add(NS.len!, `tokens${bucket(n)}`);
  const caps = capsRatio(visible);
  if (caps >= 0) f.add(NS.caps!, String(Math.min(9, Math.floor(caps * 10))));
  if (html !== '' && htmlText.trim().length < 40) f.add(NS.html!, 'little-text');

  const urls = extractUrls(plain + '\n' + htmlText, links);
  urlFeatures(urls, (name, value) => f.add(NS.u!, `${name}:${value}`, 'u'));
  return { subject, body, urls };
}
