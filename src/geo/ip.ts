import { isIPv4, isIPv6 } from 'node:net';

// Addresses as numbers, CIDR sets, and the special-use ranges that are never "abroad".
// IPv4 is a uint32; IPv6 a bigint (128 bits). IPv4-mapped and NAT64 IPv6 addresses are
// judged as the IPv4 address inside them.

export type ParsedIp = { readonly v: 4; readonly n: number; readonly text: string } | { readonly v: 6; readonly n: bigint; readonly text: string };

export function ipv4ToNumber(ip: string): number {
  let n = 0;
  for (const part of ip.split('.')) n = n * 256 + Number(part);
  return n >>> 0;
}

export function numberToIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function ipv6ToBigint(ip: string): bigint {
  let text = ip;
  const pct = text.indexOf('%');
  if (pct >= 0) text = text.slice(0, pct);
  // A trailing dotted IPv4 part becomes two groups.
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    const v4 = ipv4ToNumber(text.slice(lastColon + 1));
    text = `${text.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? (text.split('::') as [string, string]) : [text, null];
  const h = head === '' ? [] : head.split(':');
  const t = tail === null || tail === '' ? [] : tail.split(':');
  const groups = tail === null ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(parseInt(g, 16));
  return n;
}

const MAPPED_PREFIX = 0xffffn << 32n; // ::ffff:0:0/96
const NAT64_PREFIX = 0x0064ff9bn << 96n; // 64:ff9b::/96
const LOW32 = 0xffffffffn;

/** Parses an address; IPv4-mapped and NAT64 IPv6 come back as IPv4. Null when not an address. */
export function parseIp(ip: string): ParsedIp | null {
  if (isIPv4(ip)) return { v: 4, n: ipv4ToNumber(ip), text: ip };
  if (!isIPv6(ip)) return null;
  const n = ipv6ToBigint(ip);
  const high = n & ~LOW32;
  if (high === MAPPED_PREFIX || high === NAT64_PREFIX) {
    const v4 = Number(n & LOW32);
    return { v: 4, n: v4, text: numberToIpv4(v4) };
  }
  return { v: 6, n, text: ip };
}

interface Range4 {
  readonly base: number;
  readonly bits: number;
  readonly label: string;
}
interface Range6 {
  readonly base: bigint;
  readonly bits: number;
  readonly label: string;
}

/** A set of CIDR blocks; `match` returns the label of the most specific block, or null. */
export class CidrSet {
  private readonly v4: Range4[] = [];
  private readonly v6: Range6[] = [];

  /** Adds "a.b.c.d/len", "v6::/len" or a single address; throws on a malformed entry. */
  add(cidr: string, label: string = cidr): void {
    const slash = cidr.indexOf('/');
    const addr = slash < 0 ? cidr : cidr.slice(0, slash);
    const p = isIPv4(addr) ? ({ v: 4, n: ipv4ToNumber(addr) } as const) : isIPv6(addr) ? ({ v: 6, n: ipv6ToBigint(addr) } as const) : null;
    if (p === null) throw new Error(`"${cidr}" is not an address or CIDR block`);
    const max = p.v === 4 ? 32 : 128;
    const bits = slash < 0 ? max : Number(cidr.slice(slash + 1));
    if (!Number.isInteger(bits) || bits < 0 || bits > max) throw new Error(`"${cidr}": prefix length must be 0-${max}`);
    if (p.v === 4) {
      const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
      this.v4.push({ base: (p.n & mask) >>> 0, bits, label });
      this.v4.sort((a, b) => b.bits - a.bits);
    } else {
      const mask = bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << BigInt(128 - bits);
      this.v6.push({ base: p.n & mask, bits, label });
      this.v6.sort((a, b) => b.bits - a.bits);
    }
  }

  get size(): number {
    return this.v4.length + this.v6.length;
  }

  match(ip: ParsedIp): string | null {
    if (ip.v === 4) {
      for (const r of this.v4) {
        const mask = r.bits === 0 ? 0 : (0xffffffff << (32 - r.bits)) >>> 0;
        if (((ip.n & mask) >>> 0) === r.base) return r.label;
      }
      return null;
    }
    for (const r of this.v6) {
      const mask = r.bits === 0 ? 0n : ((1n << BigInt(r.bits)) - 1n) << BigInt(128 - r.bits);
      if ((ip.n & mask) === r.base) return r.label;
    }
    return null;
  }
}

// IANA special-purpose registries (RFC 6890 and successors): addresses that are not
// globally reachable hosts. A client coming from one of these is inside the provider's
// network (webmail, a relay, a test), never "abroad". Public databases sometimes give
// such blocks a country (e.g. 203.0.113.0/24 → AU), so they are decided before the lookup.
const SPECIAL = new CidrSet();
for (const [cidr, label] of [
  ['0.0.0.0/8', 'this network'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'shared (CGNAT)'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'IETF protocol assignments'],
  ['192.0.2.0/24', 'documentation'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
  ['::/127', 'unspecified/loopback'],
  ['100::/64', 'discard-only'],
  ['2001:db8::/32', 'documentation'],
  ['fc00::/7', 'unique local'],
  ['fe80::/10', 'link-local'],
  ['ff00::/8', 'multicast'],
] as const) {
  SPECIAL.add(cidr, label);
}

/** The special-use range an address is in ("private", "loopback", ...), or null for a public address. */
export function specialUse(ip: ParsedIp): string | null {
  return SPECIAL.match(ip);
}

/** A canonical text key for an address (IPv6 spelled differently maps to one key). */
export function ipKey(ip: ParsedIp): string {
  return ip.v === 4 ? ip.text : `v6:${ip.n.toString(16)}`;
}
