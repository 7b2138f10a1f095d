import type { Place, SourceIpStat } from '../counter-store.ts';
import { sourcePrefix } from '../source-prefix.ts';
import { AddressList, emptyFigures, type AddressStat, type ScanOutput } from './address-list.ts';
import { intToIpv4, ipv4ToInt } from './ip-key.ts';
import { bytesOf, resized, restoreBytes } from './typed-arrays.ts';

export type { AddressStat } from './address-list.ts';

// The client addresses each sender ID was seen from, for the embedded counter store.
//
// Most IDs send from one or two IPv4 addresses (home and phone, office and home), so the
// first two live inline in flat typed arrays, two entries per slot, with no object per
// sender. Only an ID seen from a third address, or from an IPv6 address, gets an
// AddressList of them (a botnet-driven ID has hundreds; at most MAX_ADDRESSES are kept).
// docs/performance.md has the measured bytes per ID.

/** What the detection modules need from a sender's addresses at one moment (see figures()). */
export type AddressFigures = ScanOutput;

/** Beyond this many addresses per sender the least recently seen one is forgotten. */
export const MAX_ADDRESSES = 256;
/** The low two bits of `flags` are the table's; the owner may use the others. */
export const ADDRESS_MODE_MASK = 3;
const NONE = 0;
const ONE = 1;
const MAPPED = 2;
const TWO = 3;
/** Coordinates are stored as Int16 hundredths of a degree; this marks "none". */
const NO_COORD = -32768;
/** "--": internal or unknown address; stored, but not counted as a country. */
const INTERNAL = 0x2d2d;

export function packCountry(cc: string): number {
  return cc.length === 2 ? (cc.charCodeAt(0) << 8) | cc.charCodeAt(1) : 0;
}

export function unpackCountry(v: number): string | null {
  return v === 0 ? null : String.fromCharCode(v >> 8, v & 255);
}

function isCountry(c: number): boolean {
  return c !== 0 && c !== INTERNAL;
}

function coord(v: number): number {
  return Number.isFinite(v) ? Math.round(v * 100) : NO_COORD;
}

export function uncoord(v: number): number {
  return v === NO_COORD ? NaN : v / 100;
}

/**
 * The network of an address as a map key, without allocating for IPv4 (the usual case):
 * the top 24 bits as a number; IPv6 as sourcePrefix's text ("h:h:h::/48"), IPv4-mapped
 * IPv6 as its IPv4 number.
 */
export function networkKey(ip: string): number | string {
  const v4 = ipv4ToInt(ip);
  if (v4 !== 0) return v4 >>> 8;
  const p = sourcePrefix(ip);
  if (p === null) return ip;
  if (p.endsWith('/24')) return ipv4ToInt(p.slice(0, -3)) >>> 8;
  return p;
}

export interface AddressTableData {
  readonly arrays: Readonly<Record<string, Uint8Array>>;
  readonly mapped: readonly [number, [string, AddressStat][]][];
}

const ARRAY_NAMES = ['flags', 'ip4', 'count', 'first', 'last', 'country', 'lat', 'lon'] as const;

export class SourceAddressTable {
  /** Per slot. Low two bits: how the addresses are kept (none, one or two inline, or an AddressList). */
  flags = new Uint8Array(0);
  // Two entries per slot: [2 * slot] and [2 * slot + 1].
  private ip4 = new Uint32Array(0);
  private count = new Uint32Array(0);
  private first = new Uint32Array(0);
  private last = new Uint32Array(0);
  private country = new Uint16Array(0);
  private lat = new Int16Array(0);
  private lon = new Int16Array(0);
  private readonly mapped = new Map<number, AddressList>();

  grow(capacity: number): void {
    this.flags = resized(this.flags, capacity);
    this.ip4 = resized(this.ip4, 2 * capacity);
    this.count = resized(this.count, 2 * capacity);
    this.first = resized(this.first, 2 * capacity);
    this.last = resized(this.last, 2 * capacity);
    this.country = resized(this.country, 2 * capacity);
    this.lat = resized(this.lat, 2 * capacity);
    this.lon = resized(this.lon, 2 * capacity);
  }

  private inlineStat(e: number): AddressStat {
    const v4 = this.ip4[e]!;
    return { count: this.count[e]!, first: this.first[e]!, last: this.last[e]!, country: this.country[e]!, lat: this.lat[e]!, lon: this.lon[e]!, net: v4 >>> 8 };
  }

  private setInline(e: number, v4: number, nowSec: number, place: Place | null): void {
    this.ip4[e] = v4;
    this.count[e] = 1;
    this.first[e] = nowSec;
    this.last[e] = nowSec;
    this.country[e] = place ? packCountry(place.country) : 0;
    this.lat[e] = place ? coord(place.lat) : NO_COORD;
    this.lon[e] = place ? coord(place.lon) : NO_COORD;
  }

  private touchInline(e: number, nowSec: number, place: Place | null): void {
    this.count[e]!++;
    this.last[e] = nowSec;
    if (place) {
      this.country[e] = packCountry(place.country);
      this.lat[e] = coord(place.lat);
      this.lon[e] = coord(place.lon);
    }
  }

  private setMode(slot: number, mode: number): void {
    this.flags[slot] = (this.flags[slot]! & ~ADDRESS_MODE_MASK) | mode;
  }

  /**
   * Records that `slot` used `ip` at `nowSec`. Returns the entry forgotten to make room
   * (the least recently seen), if any: it may still be the "previous place" of this event.
   */
  note(slot: number, ip: string, nowSec: number, place: Place | null): [string, AddressStat] | null {
    const mode = this.flags[slot]! & ADDRESS_MODE_MASK;
    const v4 = ipv4ToInt(ip);
    const e = 2 * slot;
    if (v4 !== 0 && mode !== MAPPED) {
      if (mode === NONE) {
        this.setInline(e, v4, nowSec, place);
        this.setMode(slot, ONE);
        return null;
      }
      if (v4 === this.ip4[e]) {
        this.touchInline(e, nowSec, place);
        return null;
      }
      if (mode === ONE) {
        this.setInline(e + 1, v4, nowSec, place);
        this.setMode(slot, TWO);
        return null;
      }
      if (v4 === this.ip4[e + 1]) {
        this.touchInline(e + 1, nowSec, place);
        return null;
      }
    }
    let list = this.mapped.get(slot);
    if (list === undefined) {
      list = new AddressList(MAX_ADDRESSES);
      for (let k = 0; k < (mode === ONE ? 1 : mode === TWO ? 2 : 0); k++) list.add(intToIpv4(this.ip4[e + k]!), this.inlineStat(e + k));
      this.clearInline(e);
      this.clearInline(e + 1);
      this.mapped.set(slot, list);
      this.setMode(slot, MAPPED);
    }
    const cc = place ? packCountry(place.country) : 0;
    const lat = place ? coord(place.lat) : NO_COORD;
    const lon = place ? coord(place.lon) : NO_COORD;
    if (list.touch(ip, nowSec, cc, lat, lon, place !== null)) return null;
    return list.add(ip, { count: 1, first: nowSec, last: nowSec, country: cc, lat, lon, net: networkKey(ip) });
  }

  /**
   * Distinct addresses, countries and networks per window (each `nowSec - windows[i]`),
   * the first-seen time of `ip`'s network and, with `previousOf`, the latest other address
   * with a known country (`evicted`, an entry just forgotten, is a candidate too). One pass.
   */
  figures(slot: number, nowSec: number, ip: string | null, windows: readonly number[], previousOf: boolean, evicted: [string, AddressStat] | null = null): AddressFigures {
    const mode = this.flags[slot]! & ADDRESS_MODE_MASK;
    // The address is parsed once per request: its IPv4 number serves the inline scan and the network key.
    const v4 = ip === null ? 0 : ipv4ToInt(ip);
    const mine = ip === null ? null : v4 !== 0 ? v4 >>> 8 : networkKey(ip);
    let out: AddressFigures;
    if (mode === MAPPED) {
      out = this.mapped.get(slot)!.scan(nowSec, ip, mine, windows, previousOf);
    } else {
      out = emptyFigures(windows.length);
      if (mode !== NONE) this.scanInline(2 * slot, mode === ONE ? 1 : 2, nowSec, v4, mine, windows, previousOf, out);
    }
    if (previousOf && evicted !== null && evicted[1].country !== 0 && (out.previous === null || evicted[1].last >= out.previous.last)) {
      // A copy: the list may hand the same answer to the next identical question.
      return { ...out, previousIp: evicted[0], previous: evicted[1] };
    }
    return out;
  }

  /** `v4`: the event address as an IPv4 number, 0 when none or not IPv4. */
  private scanInline(e: number, n: number, nowSec: number, v4: number, mine: number | string | null, windows: readonly number[], previousOf: boolean, out: AddressFigures): void {
    let best = -1;
    for (let k = e; k < e + n; k++) {
      if (mine === this.ip4[k]! >>> 8 && (out.prefixFirst === 0 || this.first[k]! < out.prefixFirst)) out.prefixFirst = this.first[k]!;
      if (previousOf && this.ip4[k] !== v4 && this.country[k] !== 0 && (best < 0 || this.last[k]! >= this.last[best]!)) best = k;
    }
    if (best >= 0) {
      out.previousIp = intToIpv4(this.ip4[best]!);
      out.previous = this.inlineStat(best);
    }
    // With at most two entries, "distinct" is "the second differs from the first one counted".
    for (let i = 0; i < windows.length; i++) {
      const since = nowSec - windows[i]!;
      let ips = 0;
      let countries = 0;
      let nets = 0;
      let cc = -1;
      let net = -1;
      for (let k = e; k < e + n; k++) {
        if (this.last[k]! <= since) continue;
        ips++;
        const c = this.country[k]!;
        if (isCountry(c) && c !== cc) {
          countries++;
          cc = c;
        }
        if (this.ip4[k]! >>> 8 !== net) {
          nets++;
          net = this.ip4[k]! >>> 8;
        }
      }
      out.distinctIps[i] = ips;
      out.distinctCountries[i] = countries;
      out.distinctPrefixes[i] = nets;
    }
  }

  /** The addresses of a slot, most recently seen first (support tools). */
  list(slot: number): SourceIpStat[] {
    const mode = this.flags[slot]! & ADDRESS_MODE_MASK;
    const rows: [string, AddressStat][] = [];
    if (mode === MAPPED) rows.push(...this.mapped.get(slot)!.entries());
    else for (let k = 0; k < (mode === ONE ? 1 : mode === TWO ? 2 : 0); k++) rows.push([intToIpv4(this.ip4[2 * slot + k]!), this.inlineStat(2 * slot + k)]);
    return rows
      .map(([ip, s]) => ({ ip, country: unpackCountry(s.country), count: s.count, firstSeen: s.first * 1000, lastSeen: s.last * 1000 }))
      .sort((a, b) => b.lastSeen - a.lastSeen);
  }

  private clearInline(e: number): void {
    this.ip4[e] = 0;
    this.count[e] = 0;
    this.first[e] = 0;
    this.last[e] = 0;
    this.country[e] = 0;
    this.lat[e] = 0;
    this.lon[e] = 0;
  }

  clear(slot: number): void {
    this.clearInline(2 * slot);
    this.clearInline(2 * slot + 1);
    this.setMode(slot, NONE);
    this.mapped.delete(slot);
  }

  exportState(slots: number): AddressTableData {
    const arrays: Record<string, Uint8Array> = {};
    for (const name of ARRAY_NAMES) arrays[name] = bytesOf(this[name], slots * (name === 'flags' ? 1 : 2));
    return { arrays, mapped: [...this.mapped.entries()].map(([slot, list]) => [slot, list.entries()]) };
  }

  /** Restores exported addresses into a table already grown to hold them. */
  importState(data: AddressTableData): void {
    for (const name of ARRAY_NAMES) restoreBytes(this[name], data.arrays[name]);
    for (const [slot, entries] of data.mapped) {
      const list = new AddressList(MAX_ADDRESSES);
      for (const [ip, s] of entries) list.add(ip, { ...s, net: networkKey(ip) });
      this.mapped.set(slot, list);
    }
  }
}
