// The addresses of one sender seen from more than two addresses (or from IPv6): home,
// phone and office for many users, hundreds for a botnet-driven ID, and every request
// reads figures over all of them. Kept as one flat array of numbers per list (a row per
// address) with a per-network summary, so a read is a few loops over numbers, with no
// object per address and no address parsed again; small lists (the common case) need no
// Map at all. docs/performance.md has the measured bytes per ID.

import { intToIpv4, ipv4ToInt } from './ip-key.ts';

/** One address's record as the table exports and shows it. */
export interface AddressStat {
  count: number;
  first: number;
  last: number;
  /** Packed country code, 0 when unknown. */
  country: number;
  /** Int16 hundredths of a degree; NO_COORD when none. */
  lat: number;
  lon: number;
  /** The address's network (source-address-table.ts networkKey). */
  net: number | string;
}

/** Figures over a sender's addresses; the arrays have one entry per requested window. */
export interface ScanOutput {
  /** Per requested window: distinct addresses, countries and networks seen within it. */
  readonly distinctIps: number[];
  readonly distinctCountries: number[];
  readonly distinctPrefixes: number[];
  /** First-seen second of the event address's network; 0 when not recorded. */
  prefixFirst: number;
  /** The most recently seen other address with a known country, when asked for. */
  previousIp: string | null;
  previous: AddressStat | null;
}

export function emptyFigures(windows: number): ScanOutput {
  return {
    distinctIps: new Array<number>(windows).fill(0),
    distinctCountries: new Array<number>(windows).fill(0),
    distinctPrefixes: new Array<number>(windows).fill(0),
    prefixFirst: 0,
    previousIp: null,
    previous: null,
  };
}

/** "--": internal or unknown address; stored, but not counted as a country. */
const INTERNAL = 0x2d2d;
const scratchCountries: number[][] = [];

// A row per address: count, first, last, country, lat, lon, network id.
const STRIDE = 7;
const COUNT = 0;
const FIRST = 1;
const LAST = 2;
const COUNTRY = 3;
const LAT = 4;
const LON = 5;
const NET = 6;
// A row per network: member count, first-seen (oldest member), newest last-seen.
const NET_STRIDE = 3;
const MEMBERS = 0;
const NET_FIRST = 1;
const NEWEST = 2;
/** Up to this many entries a linear search beats a Map, and costs no memory. */
const LINEAR_UP_TO = 16;

/** An address as kept: IPv4 as a signed 32-bit number (a small integer to V8: no string object), else its text. */
function keyOf(ip: string): number | string {
  const v4 = ipv4ToInt(ip);
  return v4 === 0 ? ip : v4 | 0;
}

function textOf(key: number | string): string {
  return typeof key === 'number' ? intToIpv4(key >>> 0) : key;
}

interface CachedScan {
  readonly version: number;
  readonly nowSec: number;
  readonly ip: string | null;
  readonly windows: readonly number[];
  readonly previousOf: boolean;
  readonly out: ScanOutput;
}

export class AddressList {
  size = 0;
  // Short lists grow by exact copies (push would reserve room for 16 more entries each).
  private ips: (number | string)[] = [];
  private rows: number[] = [];
  private netKeys: (number | string)[] = [];
  private nets: number[] = [];
  private index: Map<number | string, number> | null = null;
  private netIndex: Map<number | string, number> | null = null;
  // The last scan's answer, for long lists: the RCPTs of one transaction ask the same
  // question (same second, same address, nothing recorded in between), 40 times for a
  // 40-recipient spam run.
  private version = 0;
  private cached: CachedScan | null = null;

  constructor(private readonly maxSize: number) {}

  private find(ip: string): number {
    const key = keyOf(ip);
    if (this.index !== null) return this.index.get(key) ?? -1;
    return this.ips.indexOf(key);
  }

  private findNet(key: number | string): number {
    if (this.netIndex !== null) return this.netIndex.get(key) ?? -1;
    return this.netKeys.indexOf(key);
  }

  /** Updates a known address; false when the address is not in the list. */
  touch(ip: string, nowSec: number, country: number, lat: number, lon: number, hasPlace: boolean): boolean {
    const k = this.find(ip);
    if (k < 0) return false;
    this.version++;
    const r = k * STRIDE;
    const wentBack = nowSec < this.rows[r + LAST]!;
    this.rows[r + COUNT]!++;
    this.rows[r + LAST] = nowSec;
    if (hasPlace) {
      this.rows[r + COUNTRY] = country;
      this.rows[r + LAT] = lat;
      this.rows[r + LON] = lon;
    }
    const j = this.rows[r + NET]!;
    if (wentBack) this.resummarise(j);
    else if (nowSec > this.nets[j * NET_STRIDE + NEWEST]!) this.nets[j * NET_STRIDE + NEWEST] = nowSec;
    return true;
  }

  /**
   * Adds an address not in the list. When full, first forgets the least recently seen
   * address and returns it (it may still be the sender's previous place for this event).
   */
  add(ip: string, stat: AddressStat): [string, AddressStat] | null {
    this.version++;
    let evicted: [string, AddressStat] | null = null;
    if (this.size >= this.maxSize) {
      let oldest = 0;
      for (let k = 1; k < this.size; k++) if (this.rows[k * STRIDE + LAST]! < this.rows[oldest * STRIDE + LAST]!) oldest = k;
      evicted = [textOf(this.ips[oldest]!), this.stat(oldest)];
      this.remove(oldest);
    }
    let j = this.findNet(stat.net);
    if (j < 0) {
      j = this.netKeys.length;
      if (j < LINEAR_UP_TO) {
        this.netKeys = this.netKeys.concat(stat.net);
        this.nets = this.nets.concat(0, stat.first, stat.last);
      } else {
        this.netKeys.push(stat.net);
        this.nets.push(0, stat.first, stat.last);
      }
      if (this.netIndex !== null) this.netIndex.set(stat.net, j);
      else if (this.netKeys.length > LINEAR_UP_TO) this.netIndex = new Map(this.netKeys.map((key, i) => [key, i]));
    } else {
      const n = j * NET_STRIDE;
      if (stat.first < this.nets[n + NET_FIRST]!) this.nets[n + NET_FIRST] = stat.first;
      if (stat.last > this.nets[n + NEWEST]!) this.nets[n + NEWEST] = stat.last;
    }
    this.nets[j * NET_STRIDE + MEMBERS]!++;
    const k = this.size++;
    const key = keyOf(ip);
    if (k < LINEAR_UP_TO) {
      this.ips = this.ips.concat(key);
      this.rows = this.rows.concat(stat.count, stat.first, stat.last, stat.country, stat.lat, stat.lon, j);
    } else {
      this.ips.push(key);
      this.rows.push(stat.count, stat.first, stat.last, stat.country, stat.lat, stat.lon, j);
    }
    if (this.index !== null) this.index.set(key, k);
    else if (this.size > LINEAR_UP_TO) this.index = new Map(this.ips.map((a, i) => [a, i]));
    return evicted;
  }

  /** Removes entry k by moving the last entry into its place. */
  private remove(k: number): void {
    const j = this.rows[k * STRIDE + NET]!;
    this.index?.delete(this.ips[k]!);
    const tail = --this.size;
    if (k !== tail) {
      this.ips[k] = this.ips[tail]!;
      this.index?.set(this.ips[k]!, k);
      for (let f = 0; f < STRIDE; f++) this.rows[k * STRIDE + f] = this.rows[tail * STRIDE + f]!;
    }
    this.ips.length = tail;
    this.rows.length = tail * STRIDE;
    if (--this.nets[j * NET_STRIDE + MEMBERS]! === 0) this.removeNet(j);
    else this.resummarise(j);
  }

  /** Drops an empty network by moving the last network into its place. */
  private removeNet(j: number): void {
    this.netIndex?.delete(this.netKeys[j]!);
    const tail = this.netKeys.length - 1;
    if (j !== tail) {
      this.netKeys[j] = this.netKeys[tail]!;
      this.netIndex?.set(this.netKeys[j]!, j);
      for (let f = 0; f < NET_STRIDE; f++) this.nets[j * NET_STRIDE + f] = this.nets[tail * NET_STRIDE + f]!;
      for (let k = 0; k < this.size; k++) if (this.rows[k * STRIDE + NET] === tail) this.rows[k * STRIDE + NET] = j;
    }
    this.netKeys.length = tail;
    this.nets.length = tail * NET_STRIDE;
  }

  /** Recomputes a network's first and newest times from its members (rare: eviction, clock steps). */
  private resummarise(j: number): void {
    let first = Infinity;
    let newest = 0;
    for (let k = 0; k < this.size; k++) {
      const r = k * STRIDE;
      if (this.rows[r + NET] !== j) continue;
      if (this.rows[r + FIRST]! < first) first = this.rows[r + FIRST]!;
      if (this.rows[r + LAST]! > newest) newest = this.rows[r + LAST]!;
    }
    this.nets[j * NET_STRIDE + NET_FIRST] = first;
    this.nets[j * NET_STRIDE + NEWEST] = newest;
  }

  private stat(k: number): AddressStat {
    const r = k * STRIDE;
    const rows = this.rows;
    return { count: rows[r + COUNT]!, first: rows[r + FIRST]!, last: rows[r + LAST]!, country: rows[r + COUNTRY]!, lat: rows[r + LAT]!, lon: rows[r + LON]!, net: this.netKeys[rows[r + NET]!]! };
  }

  /** Every address with its record, least recently seen first. */
  entries(): [string, AddressStat][] {
    const out: [string, AddressStat][] = [];
    for (let k = 0; k < this.size; k++) out.push([textOf(this.ips[k]!), this.stat(k)]);
    return out.sort((a, b) => a[1].last - b[1].last);
  }

  /**
   * The figures of source-address-table.ts figures() over this list; for a long list, the
   * previous answer when nothing changed since the same question (its arrays are then
   * shared: snapshots are read-only).
   */
  scan(nowSec: number, ip: string | null, mine: number | string | null, windows: readonly number[], previousOf: boolean): ScanOutput {
    const c = this.cached;
    if (c !== null && c.version === this.version && c.nowSec === nowSec && c.ip === ip && c.windows === windows && c.previousOf === previousOf) return c.out;
    const out = emptyFigures(windows.length);
    this.compute(nowSec, ip, mine, windows, previousOf, out);
    // Short lists are cheap to scan; keeping an answer for each would cost more memory than it saves.
    this.cached = this.size > LINEAR_UP_TO ? { version: this.version, nowSec, ip, windows, previousOf, out } : null;
    return out;
  }

  private compute(nowSec: number, ip: string | null, mine: number | string | null, windows: readonly number[], previousOf: boolean, out: ScanOutput): void {
    const nw = windows.length;
    while (scratchCountries.length < nw) scratchCountries.push([]);
    for (let i = 0; i < nw; i++) scratchCountries[i]!.length = 0;
    const self = ip === null ? -1 : this.find(ip);
    const rows = this.rows;
    let best = -1;
    for (let k = 0; k < this.size; k++) {
      const last = rows[k * STRIDE + LAST]!;
      const c = rows[k * STRIDE + COUNTRY]!;
      if (previousOf && k !== self && c !== 0 && (best < 0 || last >= rows[best * STRIDE + LAST]!)) best = k;
      for (let i = 0; i < nw; i++) {
        if (last <= nowSec - windows[i]!) continue;
        out.distinctIps[i]!++;
        // Few countries per sender: a linear scan of a small array beats a Set.
        if (c !== 0 && c !== INTERNAL && !scratchCountries[i]!.includes(c)) scratchCountries[i]!.push(c);
      }
    }
    for (let i = 0; i < nw; i++) {
      out.distinctCountries[i] = scratchCountries[i]!.length;
      const since = nowSec - windows[i]!;
      let nets = 0;
      for (let j = 0; j < this.netKeys.length; j++) if (this.nets[j * NET_STRIDE + NEWEST]! > since) nets++;
      out.distinctPrefixes[i] = nets;
    }
    const mj = mine === null ? -1 : this.findNet(mine);
    if (mj >= 0) out.prefixFirst = this.nets[mj * NET_STRIDE + NET_FIRST]!;
    if (best >= 0) {
      out.previousIp = textOf(this.ips[best]!);
      out.previous = this.stat(best);
    }
  }
}
