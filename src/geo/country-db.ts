import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Reader, type Response } from 'maxmind';
import type { Place } from '../store/counter-store.ts';
import { centroid } from './centroids.ts';
import type { ParsedIp } from './ip.ts';

// Country (and, with a city database, coordinates) of an address, from a MaxMind-format
// (.mmdb) file held in memory: a lookup walks the in-memory search tree (≈1 µs for IPv4)
// and decoded records are cached, so lookups cost nothing noticeable on the policy
// server's path (docs/connection-source.md has the measurement). No network, ever.
//
// Record shapes understood:
//   ip-location-db country files      { country_code: "JP" }
//   ip-location-db city files         { country_code, latitude, longitude, ... }
//   MaxMind GeoIP2/GeoLite2 Country   { country: { iso_code }, registered_country: { iso_code } }
//   MaxMind GeoIP2/GeoLite2 City      + { location: { latitude, longitude } }
// Without coordinates a country's centroid stands in (src/geo/centroids.ts).

const require = createRequire(import.meta.url);

/** The database shipped with fumidai: geo-whois-asn-country (IPv4 + IPv6), CC BY 4.0 data by NRO. */
export function bundledCountryDatabase(): string {
  return require.resolve('@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb');
}

interface MmdbRecord {
  country_code?: string;
  latitude?: number | string;
  longitude?: number | string;
  country?: { iso_code?: string };
  registered_country?: { iso_code?: string };
  represented_country?: { iso_code?: string };
  location?: { latitude?: number; longitude?: number };
}

/** A small bounded cache for mmdb-lib's decoder (keyed by data offset). */
class BoundedCache {
  private map = new Map<string | number, unknown>();
  constructor(private readonly max: number) {}
  get(key: string | number): unknown {
    return this.map.get(key);
  }
  set(key: string | number, value: unknown): void {
    if (this.map.size >= this.max) this.map.clear();
    this.map.set(key, value);
  }
}

export interface DatabaseInfo {
  readonly file: string;
  readonly type: string;
  /** Whether records carry coordinates (a city database). */
  readonly coordinates: boolean;
  /** When the database was built (ms since the epoch; 0 when unknown). */
  readonly builtAt: number;
  readonly nodeCount: number;
  readonly loadedAt: number;
  readonly bytes: number;
}

/** MaxMind writes build_epoch in seconds; some generators write milliseconds. */
function epochMs(v: unknown): number {
  const n = Number(v instanceof Date ? v.getTime() : v);
  if (!Number.isFinite(n) || n <= 0) return 0;
  return n > 1e11 ? n : n * 1000;
}

/** The place a database record describes (country; coordinates, else the country's centroid), or null. */
export function placeOfRecord(rec: unknown): Place | null {
  if (rec === null || typeof rec !== 'object') return null;
  const r = rec as MmdbRecord;
  const cc = countryOf(r);
  if (cc === null) return null;
  const c = coordsOf(r) ?? centroid(cc);
  return Object.freeze({ country: cc, lat: c ? c[0] : NaN, lon: c ? c[1] : NaN });
}

function countryOf(r: MmdbRecord): string | null {
  const cc = r.country_code ?? r.country?.iso_code ?? r.represented_country?.iso_code ?? r.registered_country?.iso_code;
  return typeof cc === 'string' && /^[A-Z]{2}$/.test(cc) ? cc : null;
}

function coordsOf(r: MmdbRecord): [number, number] | null {
  const lat = Number(r.location?.latitude ?? r.latitude);
  const lon = Number(r.location?.longitude ?? r.longitude);
  return Number.isFinite(lat) && Number.isFinite(lon) && (r.location?.latitude !== undefined || r.latitude !== undefined) ? [lat, lon] : null;
}

export class CountryDatabase {
  private reader: Reader<Response>;
  private places = new WeakMap<MmdbRecord, Place | null>();
  private readonly unknown: Place;
  private meta: DatabaseInfo;

  /** Opens the file; throws when it is missing or not an .mmdb database. */
  constructor(
    readonly file: string,
    unknownCountry = 'ZZ',
  ) {
    this.unknown = Object.freeze({ country: unknownCountry, lat: NaN, lon: NaN });
    const loaded = CountryDatabase.open(file);
    this.reader = loaded.reader;
    this.meta = loaded.info;
  }

  private static open(file: string): { reader: Reader<Response>; info: DatabaseInfo } {
    const buf = readFileSync(file);
    if (buf[0] === 0x1f && buf[1] === 0x8b) throw new Error(`${file} is gzip-compressed; decompress it first`);
    let reader: Reader<Response>;
    try {
      reader = new Reader<Response>(buf, { cache: new BoundedCache(50_000) });
    } catch (e) {
      throw new Error(`${file} is not a MaxMind-format (.mmdb) database: ${(e as Error).message}`);
    }
    // A database that cannot answer a well-known address is broken or half-written.
    let coordinates = false;
    for (const probe of ['8.8.8.8', '1.1.1.1', '126.0.0.1']) {
      const r = reader.get(probe) as MmdbRecord | null;
      if (r && coordsOf(r) !== null) coordinates = true;
    }
    if (reader.get('8.8.8.8') === null && reader.get('126.0.0.1') === null) throw new Error(`${file}: the database does not know 8.8.8.8 nor 126.0.0.1; not a usable country database`);
    const m = reader.metadata;
    return {
      reader,
      info: { file, type: m.databaseType, coordinates, builtAt: epochMs(m.buildEpoch), nodeCount: m.nodeCount, loadedAt: Date.now(), bytes: statSync(file).size },
    };
  }

  get info(): DatabaseInfo {
    return this.meta;
  }

  /** Re-reads the file; on failure the previous database stays in use and the error is thrown. */
  reload(): DatabaseInfo {
    const loaded = CountryDatabase.open(this.file);
    this.reader = loaded.reader;
    this.places = new WeakMap();
    this.meta = loaded.info;
    return this.meta;
  }

  /** The place given to public addresses the database does not know. */
  lookupUnknown(): Place {
    return this.unknown;
  }

  /** Place of a public address (special-use addresses are decided by the caller). */
  lookup(ip: ParsedIp): Place {
    // An IPv4-only database would answer IPv6 lookups from its IPv4 tree: wrong.
    if (ip.v === 6 && this.reader.metadata.ipVersion === 4) return this.unknown;
    let rec: MmdbRecord | null;
    try {
      rec = this.reader.get(ip.text) as MmdbRecord | null;
    } catch {
      return this.unknown;
    }
    if (rec === null || typeof rec !== 'object') return this.unknown;
    let place = this.places.get(rec);
    if (place === undefined) {
      place = placeOfRecord(rec);
      this.places.set(rec, place);
    }
    return place ?? this.unknown;
  }
}
