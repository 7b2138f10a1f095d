import { parseIp } from '../geo/ip.ts';
import { ipv4ToInt } from './memory/ip-key.ts';

// The network a client address belongs to, for counting distinct sources: an IPv4 /24 or an
// IPv6 /48 (what one site or one carrier gateway pool typically gets). A phone behind
// carrier-grade NAT shows a new address on many connections but stays in one or a few /24s;
// a botnet spreads over many networks (docs/counting.md, docs/limits.md).
// Shared by both counter stores: the Redis store sends the prefix to its script, the memory
// store derives it from the addresses it keeps.

export const PREFIX_V4 = 24;
export const PREFIX_V6 = 48;

const v6Cache = new Map<string, string | null>();

/** "a.b.c.0/24" or "h:h:h::/48" (IPv4-mapped and NAT64 IPv6 as their IPv4); null when not an address. */
export function sourcePrefix(ip: string): string | null {
  // Fast path for dotted IPv4, the usual case: the text up to the last dot.
  const dot = ip.lastIndexOf('.');
  if (dot > 0 && !ip.includes(':')) {
    return ipv4ToInt(ip) === 0 ? null : `${ip.slice(0, dot)}.0/${PREFIX_V4}`;
  }
  const known = v6Cache.get(ip);
  if (known !== undefined) return known;
  const p = parseIp(ip);
  let out: string | null = null;
  if (p !== null && p.v === 4) out = `${p.text.slice(0, p.text.lastIndexOf('.'))}.0/${PREFIX_V4}`;
  else if (p !== null && p.v === 6) {
    const top = p.n >> 80n; // the first 48 bits: three 16-bit groups
    out = `${((top >> 32n) & 0xffffn).toString(16)}:${((top >> 16n) & 0xffffn).toString(16)}:${(top & 0xffffn).toString(16)}::/${PREFIX_V6}`;
  }
  if (v6Cache.size >= 10_000) v6Cache.clear();
  v6Cache.set(ip, out);
  return out;
}
