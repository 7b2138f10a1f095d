import type { FumidaiConfig } from '../config/config.ts';
import type { EngineEvent, SourceInfo, SourceListing, SourceResolver } from '../engine/types.ts';
import type { Place } from '../store/counter-store.ts';
import { AsnDatabase, bundledAsnFolder } from './asn-db.ts';
import { centroid } from './centroids.ts';
import { bundledCountryDatabase, CountryDatabase, type DatabaseInfo } from './country-db.ts';
import { DnsblClient, type DnsblHit, type DnsblStats } from './dnsbl.ts';
import { watchFile, type FileWatch } from './file-watch.ts';
import { CidrSet, ipKey, parseIp, specialUse, type ParsedIp } from './ip.ts';
import { TorExitList } from './tor-list.ts';

// Everything known about a client address, for the engine (countermeasure 3): country
// and coordinates, network (ASN), the operator's allow and deny lists, the Tor exit list
// and DNS blocklists. Built once at start from the config; the engine awaits it before
// its store operation. Everything is in memory except DNSBL answers, which are cached
// and time-boxed (src/geo/dnsbl.ts), so the result is usually synchronous.

/** Addresses whose static source information is kept (a few hundred bytes each). */
const CACHE_SIZE = 100_000;

const INTERNAL: Place = Object.freeze({ country: '--', lat: NaN, lon: NaN });

export interface SourceResolverOptions {
  /** Query DNS blocklists (off for replay: a replay must not depend on the network). */
  readonly dnsbl?: boolean;
  /** Watch the database and list files (serve); replay and tests pass false. */
  readonly watch?: boolean;
  readonly log?: (msg: string) => void;
}

export interface SourceResolverStatus {
  readonly database: DatabaseInfo;
  readonly asnRanges: number | null;
  readonly torExits: number | null;
  readonly dnsbl: DnsblStats | null;
  readonly lookups: number;
}

export class GeoSourceResolver implements SourceResolver {
  readonly countries: CountryDatabase;
  readonly asn: AsnDatabase | null;
  readonly tor: TorExitList | null;
  readonly dnsbl: DnsblClient | null;
  private readonly allowCidr = new CidrSet();
  private readonly overrides = new CidrSet();
  private readonly denyCidr = new CidrSet();
  private readonly allowAsn: ReadonlySet<number>;
  private readonly denyAsn: ReadonlySet<number>;
  private readonly watches: FileWatch[] = [];
  private readonly log: (msg: string) => void;
  private lookups = 0;
  private readonly cache = new Map<string, { info: SourceInfo; parsed: ParsedIp | null }>();

  /** Throws with a message naming the setting when a file or list entry is unusable. */
  constructor(
    config: FumidaiConfig,
    opts: SourceResolverOptions = {},
  ) {
    const src = config.source;
    const rep = src.reputation;
    this.log = opts.log ?? (() => undefined);
    const dbFile = src.geo.database ?? bundledCountryDatabase();
    try {
      this.countries = new CountryDatabase(dbFile, src.geo.unknownCountry);
    } catch (e) {
      throw new Error(`source.geo.database: ${(e as Error).message}`);
    }
    for (const [list, set, key] of [
      [rep.allow.cidrs, this.allowCidr, 'allow'],
      [rep.deny.cidrs, this.denyCidr, 'deny'],
    ] as const) {
      for (const c of list) {
        try {
          set.add(c);
        } catch (e) {
          throw new Error(`source.reputation.${key}.cidrs: ${(e as Error).message}`);
        }
      }
    }
    for (const [cidr, cc] of Object.entries(src.geo.overrides)) {
      try {
        this.overrides.add(cidr, cc);
      } catch (e) {
        throw new Error(`source.geo.overrides: ${(e as Error).message}`);
      }
    }
    this.allowAsn = new Set(rep.allow.asns);
    this.denyAsn = new Set(rep.deny.asns);
    const needAsn = rep.allow.asns.length > 0 || rep.deny.asns.length > 0 || rep.asnDatabase !== null;
    try {
      this.asn = needAsn ? new AsnDatabase(rep.asnDatabase ?? bundledAsnFolder()) : null;
    } catch (e) {
      throw new Error(`source.reputation.asnDatabase: ${(e as Error).message}`);
    }
    try {
      this.tor = rep.torExitList === null ? null : new TorExitList(rep.torExitList);
    } catch (e) {
      throw new Error(`source.reputation.torExitList: ${(e as Error).message}`);
    }
    const d = rep.dnsbl;
    this.dnsbl =
      opts.dnsbl === false || d.zones.length === 0
        ? null
        : new DnsblClient({
            zones: d.zones,
            resolvers: d.resolvers,
            timeoutMs: d.timeout * 1000,
            cacheTtlMs: d.cacheTtl * 1000,
            negativeTtlMs: d.negativeTtl * 1000,
            errorTtlMs: d.errorTtl * 1000,
            cacheSize: d.cacheSize,
          });
    if (opts.watch === true && src.geo.watch) {
      this.watches.push(watchFile(this.countries.file, () => this.reloadCountries()));
      if (this.tor) this.watches.push(watchFile(this.tor.file, () => this.reloadTor()));
    }
  }

  private reloadCountries(): void {
    this.cache.clear();
    try {
      const info = this.countries.reload();
      this.log(`country database reloaded: ${info.file} (${info.type}, built ${new Date(info.builtAt).toISOString().slice(0, 10)})`);
    } catch (e) {
      this.log(`country database NOT reloaded, the previous one stays in use: ${(e as Error).message}`);
    }
  }

  private reloadTor(): void {
    if (!this.tor) return;
    this.cache.clear();
    try {
      this.log(`Tor exit list reloaded: ${this.tor.reload()} addresses`);
    } catch (e) {
      this.log(`Tor exit list NOT reloaded: ${(e as Error).message}`);
    }
  }

  /** Reloads the files (SIGHUP). */
  reload(): void {
    this.reloadCountries();
    this.reloadTor();
  }

  status(): SourceResolverStatus {
    return {
      database: this.countries.info,
      asnRanges: this.asn?.ranges ?? null,
      torExits: this.tor?.size ?? null,
      dnsbl: this.dnsbl?.stats ?? null,
      lookups: this.lookups,
    };
  }

  resolve(ip: string, _stage: EngineEvent['kind']): SourceInfo | Promise<SourceInfo> {
    this.lookups++;
    // Clients come back from the same addresses: the static part (country, network,
    // lists) is kept per address text until a file is reloaded; DNSBL answers have their
    // own cache with TTLs.
    let base = this.cache.get(ip);
    if (base === undefined) {
      base = this.lookupStatic(ip);
      if (this.cache.size >= CACHE_SIZE) this.cache.clear();
      this.cache.set(ip, base);
    }
    if (this.dnsbl === null || base.parsed === null || base.info.internal || base.info.trusted !== null) return base.info;
    const info = base.info;
    const hits = this.dnsbl.lookup(base.parsed, ipKey(base.parsed));
    const withHits = (h: readonly DnsblHit[]): SourceInfo =>
      h.length === 0 ? info : { ...info, listings: [...info.listings, ...h.map((x) => ({ kind: 'dnsbl' as const, list: x.zone, detail: `${ip} is listed in ${x.zone} (${x.code})` }))] };
    return hits instanceof Promise ? hits.then(withHits) : withHits(hits);
  }

  private lookupStatic(ip: string): { info: SourceInfo; parsed: ParsedIp | null } {
    const parsed = parseIp(ip);
    return { info: this.staticInfo(ip, parsed), parsed };
  }

  private staticInfo(ip: string, p: ParsedIp | null): SourceInfo {
    if (p === null) return { ip, place: this.countries.lookupUnknown(), internal: false, trusted: null, asn: null, listings: [] };
    const special = specialUse(p);
    if (special !== null) return { ip, place: INTERNAL, internal: true, trusted: null, asn: null, listings: [] };
    const asn = this.asn?.lookup(p) ?? null;
    const trusted = this.allowCidr.match(p) ?? (asn !== null && this.allowAsn.has(asn) ? `AS${asn}` : null);
    if (trusted !== null) return { ip, place: INTERNAL, internal: false, trusted, asn, listings: [] };
    const fixed = this.overrides.size === 0 ? null : this.overrides.match(p);
    if (fixed === '--') return { ip, place: INTERNAL, internal: true, trusted: null, asn, listings: [] };
    const place = fixed === null ? this.countries.lookup(p) : overridePlace(fixed);
    const listings: SourceListing[] = [];
    const denied = this.denyCidr.match(p);
    if (denied !== null) listings.push({ kind: 'cidr', list: denied, detail: `${ip} is in the deny list entry ${denied}` });
    if (asn !== null && this.denyAsn.has(asn)) {
      const org = this.asn?.orgOf(asn);
      listings.push({ kind: 'asn', list: `AS${asn}`, detail: `${ip} is in AS${asn}${org ? ` (${org})` : ''}, on the deny list` });
    }
    if (this.tor?.has(p)) listings.push({ kind: 'tor', list: 'tor', detail: `${ip} is a Tor exit` });
    return { ip, place, internal: false, trusted: null, asn, listings };
  }

  close(): void {
    for (const w of this.watches) w.close();
    this.dnsbl?.cancel();
  }
}

const overridePlaces = new Map<string, Place>();
function overridePlace(cc: string): Place {
  let p = overridePlaces.get(cc);
  if (!p) {
    const c = centroid(cc);
    p = Object.freeze({ country: cc, lat: c ? c[0] : NaN, lon: c ? c[1] : NaN });
    overridePlaces.set(cc, p);
  }
  return p;
}

/** The resolver for a config, or null when source checks are off. */
export function createSourceResolver(config: FumidaiConfig, opts: SourceResolverOptions = {}): GeoSourceResolver | null {
  return config.source.enabled ? new GeoSourceResolver(config, opts) : null;
}
