// URLs and their domains: features for the classifier and the URL-set fingerprint of
// campaign detection. Registrable domains are approximated without the full Public
// Suffix List: the last two labels, or three under common second-level suffixes
// (co.jp, ne.jp, co.uk, com.au, ...). Good enough to group a campaign's links.

export interface UrlInfo {
  /** Lower-case scheme://host/path, without query or fragment. */
  readonly url: string;
  readonly host: string;
  readonly domain: string;
  readonly tld: string;
  /** The host is an IP address literal. */
  readonly ipHost: boolean;
  /** Anchor text shows another domain than the link goes to (HTML). */
  readonly mismatch: boolean;
}

const SECOND_LEVEL = new Set(['co', 'ne', 'or', 'ac', 'go', 'ad', 'ed', 'gr', 'lg', 'com', 'net', 'org', 'gov', 'edu', 'ltd', 'plc', 'me']);
const SHORTENERS = new Set(['bit.ly', 'tinyurl.com', 't.co', 'goo.gl', 'ow.ly', 'is.gd', 'buff.ly', 'x.gd', 'cutt.ly', 'rebrand.ly', 'tiny.cc', 'shorturl.at', 'rb.gy', 'bl.ink', 'lnkd.in', 't.ly', 'v.gd']);
const URL_IN_TEXT = /\b(?:https?:\/\/|www\.)[^\s<>"'`{}|\\^\[\]]+/gi;

export function registrableDomain(host: string): string {
  const labels = host.split('.');
  if (labels.length <= 2) return host;
  const sld = labels[labels.length - 2]!;
  const tld = labels[labels.length - 1]!;
  const keep = tld.length === 2 && SECOND_LEVEL.has(sld) ? 3 : 2;
  return labels.slice(-keep).join('.');
}

function parse(raw: string, anchor: string | null): UrlInfo | null {
  let s = raw.trim().replace(/[.,;:!?)\]]+$/, '');
  if (/^www\./i.test(s)) s = `http://${s}`;
  const m = /^(https?):\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]+)(?::\d+)?([^?#]*)/i.exec(s);
  if (m === null) return null;
  const host = m[2]!.toLowerCase().replace(/\.$/, '');
  if (host === '' || host.length > 253) return null;
  const ipHost = /^\d{1,3}(?:\.\d{1,3}){3}$/.test(host) || host.startsWith('[') || /^\d+$/.test(host);
  const domain = ipHost ? host : registrableDomain(host);
  const tld = ipHost ? '(ip)' : (host.split('.').pop() ?? '');
  const path = m[3]!.slice(0, 64).toLowerCase();
  let mismatch = false;
  if (anchor !== null) {
    const shown = /(?:https?:\/\/)?((?:[a-z0-9-]+\.)+[a-z]{2,})/i.exec(anchor);
    if (shown !== null && /^(?:https?:\/\/|www\.)/i.test(anchor.trim())) mismatch = registrableDomain(shown[1]!.toLowerCase()) !== domain;
  }
  return { url: `${m[1]!.toLowerCase()}://${host}${path}`, host, domain, tld, ipHost, mismatch };
}

/** URLs of the text and of HTML links (with their anchor texts), at most 200, in order, distinct. */
export function extractUrls(text: string, links: readonly { readonly href: string; readonly text: string }[]): UrlInfo[] {
  const out: UrlInfo[] = [];
  const seen = new Set<string>();
  const push = (u: UrlInfo | null): void => {
    if (u === null || out.length >= 200) return;
    const key = u.url + (u.mismatch ? '!' : '');
    if (seen.has(key)) return;
    seen.add(key);
    out.push(u);
  };
  for (const l of links) if (/^(?:https?:|www\.)/i.test(l.href.trim())) push(parse(l.href, l.text));
  URL_IN_TEXT.lastIndex = 0;
  for (let m = URL_IN_TEXT.exec(text); m !== null && out.length < 200; m = URL_IN_TEXT.exec(text)) push(parse(m[0], null));
  return out;
}

function bucket(n: number): string {
  return n <= 0 ? '0' : String(Math.min(10, Math.floor(Math.log2(n + 1))));
}

/** Emits URL features: domains, hosts, TLDs, counts and traits. */
export function urlFeatures(urls: readonly UrlInfo[], emit: (name: string, value: string) => void): void {
  emit('count', bucket(urls.length));
  const domains = new Set<string>();
  for (const u of urls) {
    domains.add(u.domain);
    emit('host', u.host);
    emit('dom', u.domain);
    emit('tld', u.tld);
    const seg = /^[^/]*\/\/[^/]*\/([^/]{1,24})/.exec(u.url)?.[1];
    if (seg !== undefined) emit('path', seg.replace(/\d+/g, '0'));
    if (u.ipHost) emit('trait', 'ip-host');
    if (u.mismatch) emit('trait', 'anchor-mismatch');
    if (SHORTENERS.has(u.host)) emit('trait', 'shortener');
    if (u.host.split('.').length > 4) emit('trait', 'deep-host');
    if (/\d{4,}/.test(u.host)) emit('trait', 'digits-host');
  }
  emit('domains', bucket(domains.size));
}
