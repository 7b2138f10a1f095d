import type { SpoofingConfig } from '../config/config.ts';
import type { SenderId } from '../engine/types.ts';
import type { SenderAddress, UserSettings } from '../store/record-store.ts';

// Sender identities (countermeasure 5): which addresses a login may send as, and how an
// address from MAIL FROM or a From header is compared with them. Pure functions; the
// engine module (measures/sender-spoofing.ts) and the admin API share them.

/** Lower-cases, drops angle brackets and a sub-address ("a+tag@x" → "a@x" with separator "+"). */
export function normaliseAddress(raw: string, separator: string | null): string {
  let a = raw.trim();
  if (a.startsWith('<') && a.endsWith('>')) a = a.slice(1, -1).trim();
  a = a.toLowerCase();
  const at = a.lastIndexOf('@');
  if (at <= 0 || separator === null) return a;
  const local = a.slice(0, at);
  const cut = local.indexOf(separator);
  return cut > 0 ? `${local.slice(0, cut)}${a.slice(at)}` : a;
}

export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1);
}

/**
 * The addresses of a From header value: `Name <a@x>`, `a@x`, `"A, B" <a@x>, c@y`. Quoted
 * strings and comments are skipped; each angle-addr or bare addr-spec is one address.
 */
export function headerAddresses(value: string): string[] {
  const out: string[] = [];
  let i = 0;
  let current = '';
  let angle: string | null = null;
  const flush = (): void => {
    const a = (angle ?? current).trim();
    if (a.includes('@')) out.push(a);
    current = '';
    angle = null;
  };
  while (i < value.length) {
    const c = value[i]!;
    if (c === '"') {
      const end = value.indexOf('"', i + 1);
      i = end < 0 ? value.length : end + 1;
      continue;
    }
    if (c === '(') {
      let depth = 1;
      i++;
      while (i < value.length && depth > 0) {
        if (value[i] === '(') depth++;
        else if (value[i] === ')') depth--;
        i++;
      }
      continue;
    }
    if (c === '<') {
      const end = value.indexOf('>', i + 1);
      angle = value.slice(i + 1, end < 0 ? value.length : end);
      i = end < 0 ? value.length : end + 1;
      continue;
    }
    if (c === ',') {
      flush();
      i++;
      continue;
    }
    current += c;
    i++;
  }
  flush();
  return out;
}

/** One normalised identity: an address, or "@domain" for every address of a domain. */
export interface Identity {
  readonly match: string;
  readonly kind: SenderAddress['kind'] | 'login';
}

/** The identities of a login: its configured addresses, else what the login itself implies. */
export function identitiesOf(sender: SenderId, settings: UserSettings | null, cfg: SpoofingConfig): Identity[] {
  const sep = cfg.subaddressSeparator;
  if (settings?.addresses && settings.addresses.length > 0) {
    return settings.addresses.map((a) => ({ match: a.address.startsWith('@') ? a.address.toLowerCase() : normaliseAddress(a.address, sep), kind: a.kind }));
  }
  const out: Identity[] = [];
  if (sender.includes('@')) {
    if (cfg.loginIsAddress) out.push({ match: normaliseAddress(sender, sep), kind: 'login' });
  } else {
    for (const d of cfg.defaultDomains) out.push({ match: `${sender}@${d.toLowerCase()}`, kind: 'login' });
  }
  return out;
}

export function matches(address: string, identities: readonly Identity[]): Identity | null {
  const domain = `@${domainOf(address)}`;
  for (const id of identities) if (id.match === address || id.match === domain) return id;
  return null;
}

/** Validates and normalises an address given through the admin API or an import file. */
export function parseSenderAddress(v: unknown, kind: SenderAddress['kind']): SenderAddress | Error {
  if (typeof v !== 'string') return new Error('expected an address string');
  const a = v.trim().toLowerCase();
  if (a.length > 320 || /[\s<>,;"]/.test(a)) return new Error(`"${v}" is not an address`);
  if (a.startsWith('@')) {
    return /^@[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(a) ? { address: a, kind } : new Error(`"${v}": a domain entry looks like "@example.co.jp"`);
  }
  const at = a.lastIndexOf('@');
  if (at <= 0 || !/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(a.slice(at + 1))) return new Error(`"${v}" is not an address (local@domain)`);
  return { address: a, kind };
}
