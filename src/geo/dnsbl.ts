import { Resolver } from 'node:dns/promises';
import type { DnsblZone } from '../config/config.ts';
import type { ParsedIp } from './ip.ts';

// DNS blocklist lookups (RFC 5782) of client addresses, with a cache and a hard time
// limit: a caller waits at most `timeoutMs`; after that the address counts as "not
// listed" for this request, and a late answer still fills the cache for the next one.
// Concurrent lookups of one address share one query. Answers are cached per address
// (listed: cacheTtl, not listed: negativeTtl, failure or timeout: errorTtl).

export interface DnsblHit {
  readonly zone: string;
  /** The A record that matched, e.g. "127.0.0.4". */
  readonly code: string;
}

export interface DnsblOptions {
  readonly zones: readonly DnsblZone[];
  /** "127.0.0.1:5353" style; empty = the system resolvers. */
  readonly resolvers: readonly string[];
  readonly timeoutMs: number;
  readonly cacheTtlMs: number;
  readonly negativeTtlMs: number;
  readonly errorTtlMs: number;
  readonly cacheSize: number;
  readonly now?: () => number;
}

export interface DnsblStats {
  queries: number;
  cacheHits: number;
  listed: number;
  timeouts: number;
  errors: number;
}

interface Entry {
  readonly expires: number;
  readonly hits: readonly DnsblHit[];
}

const NONE: readonly DnsblHit[] = Object.freeze([]);
const NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN']);

/** The query name of an address in a zone: reversed octets, or reversed nibbles for IPv6. */
export function dnsblName(ip: ParsedIp, zone: string): string {
  if (ip.v === 4) return `${ip.n & 255}.${(ip.n >>> 8) & 255}.${(ip.n >>> 16) & 255}.${ip.n >>> 24}.${zone}`;
  return `${[...ip.n.toString(16).padStart(32, '0')].reverse().join('.')}.${zone}`;
}

export class DnsblClient {
  private readonly resolver: Resolver;
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<readonly DnsblHit[]>>();
  private readonly now: () => number;
  readonly stats: DnsblStats = { queries: 0, cacheHits: 0, listed: 0, timeouts: 0, errors: 0 };

  constructor(private readonly opts: DnsblOptions) {
    this.resolver = new Resolver({ timeout: Math.max(1, Math.round(opts.timeoutMs)), tries: 1 });
    if (opts.resolvers.length > 0) this.resolver.setServers([...opts.resolvers]);
    this.now = opts.now ?? Date.now;
  }

  get zones(): readonly DnsblZone[] {
    return this.opts.zones;
  }

  /** The cached answer, or null when the address must be looked up. */
  cached(key: string): readonly DnsblHit[] | null {
    const e = this.cache.get(key);
    if (e === undefined) return null;
    if (e.expires <= this.now()) {
      this.cache.delete(key);
      return null;
    }
    this.stats.cacheHits++;
    return e.hits;
  }

  /** Listings of an address: from the cache at once, else within the timeout. */
  lookup(ip: ParsedIp, key: string): readonly DnsblHit[] | Promise<readonly DnsblHit[]> {
    if (this.opts.zones.length === 0) return NONE;
    const hit = this.cached(key);
    if (hit !== null) return hit;
    let pending = this.inflight.get(key);
    if (pending === undefined) {
      pending = this.query(ip, key);
      this.inflight.set(key, pending);
      void pending.finally(() => this.inflight.delete(key));
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.stats.timeouts++;
        resolve(NONE);
      }, this.opts.timeoutMs);
      void pending.then((hits) => {
        clearTimeout(timer);
        resolve(hits);
      });
    });
  }

  private async query(ip: ParsedIp, key: string): Promise<readonly DnsblHit[]> {
    this.stats.queries++;
    let failed = false;
    const results = await Promise.all(
      this.opts.zones.map(async (z): Promise<DnsblHit | null> => {
        try {
          const answers = await this.resolver.resolve4(dnsblName(ip, z.zone));
          const codes = z.codes ?? [];
          const code = answers.find((a) => (codes.length === 0 ? a.startsWith('127.') : codes.includes(a)));
          return code === undefined ? null : { zone: z.zone, code };
        } catch (e) {
          if (!NOT_FOUND.has((e as { code?: string }).code ?? '')) failed = true;
          return null;
        }
      }),
    );
    const hits = results.filter((h): h is DnsblHit => h !== null);
    if (failed) this.stats.errors++;
    if (hits.length > 0) this.stats.listed++;
    const ttl = hits.length > 0 ? this.opts.cacheTtlMs : failed ? this.opts.errorTtlMs : this.opts.negativeTtlMs;
    if (this.cache.size >= this.opts.cacheSize) {
      // Drop the oldest tenth (Map keeps insertion order).
      let n = Math.ceil(this.opts.cacheSize / 10);
      for (const k of this.cache.keys()) {
        this.cache.delete(k);
        if (--n <= 0) break;
      }
    }
    this.cache.set(key, { expires: this.now() + ttl, hits: hits.length > 0 ? Object.freeze(hits) : NONE });
    return hits.length > 0 ? hits : NONE;
  }

  cancel(): void {
    this.resolver.cancel();
  }
}
