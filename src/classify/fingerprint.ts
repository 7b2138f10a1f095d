import { createHash } from 'node:crypto';
import type { MessageText } from './features.ts';

// Campaign fingerprints: the same spam sent through many compromised IDs has the same
// text (up to per-recipient names, numbers and tracking codes) and links to the same
// pages. Two fingerprints per message, each a 64-bit hex string:
//   body: the body's letters only (no digits, punctuation, spaces; lower case, NFKC),
//         the first 4,000 of them; none when fewer than MIN_LETTERS
//   urls: the sorted distinct link targets (host + path, no query), without links to
//         the big platforms everyone shares (a YouTube link is no campaign)
// Distinct sender IDs per fingerprint and window are counted in the counter store.

const MIN_LETTERS = 60;
const MAX_LETTERS = 4000;

const COMMON = new Set([
  'google.com', 'google.co.jp', 'youtube.com', 'youtu.be', 'facebook.com', 'twitter.com', 'x.com', 'instagram.com',
  'line.me', 'yahoo.co.jp', 'yahoo.com', 'amazon.co.jp', 'amazon.com', 'apple.com', 'microsoft.com', 'wikipedia.org',
  'github.com', 'linkedin.com', 'zoom.us', 'w3.org',
]);

function digest(s: string): string {
  return createHash('sha1').update(s).digest('hex').slice(0, 16);
}

/** Letters of normalised text: digits, punctuation and space removed. */
export function letters(normalised: string, max = MAX_LETTERS): string {
  // Unicode letters, including kana and kanji.
  const m = normalised.match(/\p{L}+/gu);
  if (m === null) return '';
  let out = '';
  for (const part of m) {
    out += part;
    if (out.length >= max) return out.slice(0, max);
  }
  return out;
}

export interface Fingerprints {
  readonly body: string | null;
  readonly urls: string | null;
}

export function fingerprints(text: MessageText): Fingerprints {
  const l = letters(text.body);
  const body = l.length >= MIN_LETTERS ? `b${digest(l)}` : null;
  const targets = [...new Set(text.urls.filter((u) => !COMMON.has(u.domain)).map((u) => u.url))].sort();
  const urls = targets.length > 0 ? `u${digest(targets.join('\n'))}` : null;
  return { body, urls };
}
