// HTML to text for classification: visible text, the links with their anchor text,
// and the tag names used. A regex scanner, not a DOM: mail HTML is often broken, and
// the classifier needs words and traits, not layout.

export interface HtmlDigest {
  readonly text: string;
  readonly links: readonly { readonly href: string; readonly text: string }[];
  readonly images: number;
  /** Lower-case tag names in order of first use (at most 64). */
  readonly tags: readonly string[];
  /** Traits: "form", "script", "hidden-text", "tiny-font", "base-href". */
  readonly traits: readonly string[];
}

const NAMED: Readonly<Record<string, string>> = {
  nbsp: ' ', amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", copy: '©', reg: '®', trade: '™',
  yen: '¥', euro: '€', pound: '£', cent: '¢', hellip: '…', mdash: '—', ndash: '–', bull: '•',
  laquo: '«', raquo: '»', middot: '·', times: '×', rsquo: '’', lsquo: '‘', rdquo: '”', ldquo: '“',
};

export function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#[xX][0-9a-fA-F]{1,6}|#\d{1,7}|[a-zA-Z]{2,8});?/g, (m, e: string) => {
    if (e.charCodeAt(0) === 35) {
      const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return cp > 0 && cp < 0x110000 && (cp < 0xd800 || cp > 0xdfff) ? String.fromCodePoint(cp) : ' ';
    }
    return NAMED[e.toLowerCase()] ?? m;
  });
}

const TAG = /<(\/?)([a-zA-Z][a-zA-Z0-9]*)([^>]*)>|<!--[\s\S]*?-->|<![^>]*>/g;
const HREF = /\bhref\s*=\s*("([^"]*)"|'([^']*)'|([^\s>]+))/i;
const BLOCK = new Set(['p', 'br', 'div', 'tr', 'td', 'li', 'table', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'blockquote', 'title']);

export function digestHtml(html: string): HtmlDigest {
  const parts: string[] = [];
  const links: { href: string; text: string }[] = [];
  const tags: string[] = [];
  const seenTags = new Set<string>();
  const traits = new Set<string>();
  let images = 0;
  let last = 0;
  let skipUntil: string | null = null;
  let openLink: { href: string; start: number } | null = null;
  TAG.lastIndex = 0;
  for (let m = TAG.exec(html); m !== null; m = TAG.exec(html)) {
    const name = m[2]?.toLowerCase();
    if (skipUntil === null && m.index > last) parts.push(html.slice(last, m.index));
    last = m.index + m[0].length;
    if (name === undefined) continue;
    const closing = m[1] === '/';
    if (skipUntil !== null) {
      if (closing && name === skipUntil) skipUntil = null;
      continue;
    }
    if (!seenTags.has(name) && tags.length < 64) {
      seenTags.add(name);
      tags.push(name);
    }
    if (BLOCK.has(name)) parts.push('\n');
    else parts.push(' ');
    if (closing) {
      if (name === 'a' && openLink !== null) {
        links.push({ href: openLink.href, text: decodeEntities(parts.slice(openLink.start).join('')).trim() });
        openLink = null;
      }
      continue;
    }
    const attrs = m[3] ?? '';
    switch (name) {
      case 'style':
      case 'script':
        if (name === 'script') traits.add('script');
        if (!attrs.endsWith('/')) skipUntil = name;
        break;
      case 'a': {
        const h = HREF.exec(attrs);
        if (h !== null && links.length < 256) openLink = { href: decodeEntities(h[2] ?? h[3] ?? h[4] ?? ''), start: parts.length };
        break;
      }
      case 'img':
        images++;
        break;
      case 'form':
        traits.add('form');
        break;
      case 'base':
        if (HREF.test(attrs)) traits.add('base-href');
        break;
      default:
        break;
    }
    if (attrs.length > 6) {
      const a = attrs.toLowerCase();
      if (a.includes('display:none') || a.includes('visibility:hidden')) traits.add('hidden-text');
      if (/font-size\s*:\s*[01](?:px|pt)|size\s*=\s*"?[01]\b/.test(a)) traits.add('tiny-font');
    }
  }
  if (skipUntil === null && last < html.length) parts.push(html.slice(last));
  if (openLink !== null) links.push({ href: openLink.href, text: decodeEntities(parts.slice(openLink.start).join('')).trim() });
  return { text: decodeEntities(parts.join('')), links, images, tags, traits: [...traits] };
}
