// The addresses of one sender seen from more than two addresses (or from IPv6): a botnet-
// driven ID has hundreds, and every request of it reads figures over all of them. Kept as
// parallel typed arrays with a per-network summary, so that a read is a few loops over
// numbers: no object per address, no allocation, no address parsed again.

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

function grown<T extends Uint32Array | Uint16Array | Int16Array>(a: T, n: number): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  return b;
}

export class AddressList {
  size = 0;
  private ips: string[] = [];
  private readonly index = new Map<string, number>();
  private count = new Uint32Array(4);
  private first = new Uint32Array(4);
  private last = new Uint32Array(4);
  private country = new Uint16Array(4);
  private lat = new Int16Array(4);
  private lon = new Int16Array(4);
  /** Network id of each address. */
  private netOf = new Uint16Array(4);
  // Per network id: its key, member count, first-seen (oldest member) and newest last-seen.
  private netKeys: (number | string)[] = [];
  private readonly netIndex = new Map<number | string, number>();
  private netMembers = new Uint16Array(4);
  private netFirst = new Uint32Array(4);
  private netNewest = new Uint32Array(4);
  private freeNets: number[] = [];
  // The last scan's answer: the RCPTs of one transaction ask the same question (same
  // second, same address, nothing noted in between), 40 times for a 40-recipient spam run.
  private version = 0;
  private cached: { version: number; nowSec: number; ip: string | null; windows: readonly number[]; previousOf: boolean; out: ScanOutput } | null = null;

  constructor(private readonly maxSize: number) {}

  has(ip: string): boolean {
    return this.index.has(ip);
  }

  /** Updates a known address; false when the address is not in the list. */
  touch(ip: string, nowSec: number, country: number, lat: number, lon: number, hasPlace: boolean): boolean {
    const k = this.index.get(ip);
    if (k === undefined) return false;
    this.version++;
    const wentBack = nowSec < this.last[k]!;
    this.count[k]!++;
    this.last[k] = nowSec;
    if (hasPlace) {
      this.country[k] = country;
      this.lat[k] = lat;
      this.lon[k] = lon;
    }
    const j = this.netOf[k]!;
    if (wentBack) this.resummarise(j);
    else if (nowSec > this.netNewest[j]!) this.netNewest[j] = nowSec;
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
      for (let k = 1; k < this.size; k++) if (this.last[k]! < this.last[oldest]!) oldest = k;
      evicted = [this.ips[oldest]!, this.stat(oldest)];
      this.remove(oldest);
    }
    const k = this.size++;
    if (k === this.count.length) this.growEntries(Math.min(this.maxSize, 2 * k));
    this.ips[k] = ip;
    this.index.set(ip, k);
    this.count[k] = stat.count;
    this.first[k] = stat.first;
    this.last[k] = stat.last;
    this.country[k] = stat.country;
    this.lat[k] = stat.lat;
    this.lon[k] = stat.lon;
    let j = this.netIndex.get(stat.net);
    if (j === undefined) {
      j = this.freeNets.pop() ?? this.netKeys.length;
      if (j === this.netMembers.length) this.growNets(2 * j);
      this.netKeys[j] = stat.net;
      this.netIndex.set(stat.net, j);
      this.netMembers[j] = 0;
      this.netFirst[j] = stat.first;
      this.netNewest[j] = stat.last;
    } else {
      if (stat.first < this.netFirst[j]!) this.netFirst[j] = stat.first;
      if (stat.last > this.netNewest[j]!) this.netNewest[j] = stat.last;
    }
    this.netOf[k] = j;
    this.netMembers[j]!++;
    return evicted;
  }

  /** Removes entry k by moving the last entry into its place. */
  private remove(k: number): void {
    const j = this.netOf[k]!;
    this.index.delete(this.ips[k]!);
    const tail = --this.size;
    if (k !== tail) {
      this.ips[k] = this.ips[tail]!;
      this.index.set(this.ips[k]!, k);
      this.count[k] = this.count[tail]!;
      this.first[k] = this.first[tail]!;
      this.last[k] = this.last[tail]!;
      this.country[k] = this.country[tail]!;
      this.lat[k] = this.lat[tail]!;
      this.lon[k] = this.lon[tail]!;
      this.netOf[k] = this.netOf[tail]!;
    }
    this.ips.length = tail;
    if (--this.netMembers[j]! === 0) {
      this.netIndex.delete(this.netKeys[j]!);
      this.freeNets.push(j);
    } else {
      this.resummarise(j);
    }
  }

  /** Recomputes a network's first and newest times from its members (rare: eviction, clock steps). */
  private resummarise(j: number): void {
    let first = Infinity;
    let newest = 0;
    for (let k = 0; k < this.size; k++) {
      if (this.netOf[k] !== j) continue;
      if (this.first[k]! < first) first = this.first[k]!;
      if (this.last[k]! > newest) newest = this.last[k]!;
    }
    this.netFirst[j] = first;
    this.netNewest[j] = newest;
  }

  private growEntries(n: number): void {
    this.count = grown(this.count, n);
    this.first = grown(this.first, n);
    this.last = grown(this.last, n);
    this.country = grown(this.country, n);
    this.lat = grown(this.lat, n);
    this.lon = grown(this.lon, n);
    this.netOf = grown(this.netOf, n);
  }

  private growNets(n: number): void {
    this.netMembers = grown(this.netMembers, n);
    this.netFirst = grown(this.netFirst, n);
    this.netNewest = grown(this.netNewest, n);
  }

  private stat(k: number): AddressStat {
    return { count: this.count[k]!, first: this.first[k]!, last: this.last[k]!, country: this.country[k]!, lat: this.lat[k]!, lon: this.lon[k]!, net: this.netKeys[this.netOf[k]!]! };
  }

  /** Every address with its record, least recently seen first. */
  entries(): [string, AddressStat][] {
    const out: [string, AddressStat][] = [];
    for (let k = 0; k < this.size; k++) out.push([this.ips[k]!, this.stat(k)]);
    return out.sort((a, b) => a[1].last - b[1].last);
  }

  /**
   * The figures of source-address-table.ts figures() over this list, into `out`; or the
   * previous answer, when nothing changed since the same question (its arrays are shared:
   * snapshots are read-only).
   */
  scan(nowSec: number, ip: string | null, mine: number | string | null, windows: readonly number[], previousOf: boolean): ScanOutput {
    const c = this.cached;
    if (c !== null && c.version === this.version && c.nowSec === nowSec && c.ip === ip && c.windows === windows && c.previousOf === previousOf) return c.out;
    const out = emptyFigures(windows.length);
    this.compute(nowSec, ip, mine, windows, previousOf, out);
    this.cached = { version: this.version, nowSec, ip, windows, previousOf, out };
    return out;
  }

  private compute(nowSec: number, ip: string | null, mine: number | string | null, windows: readonly number[], previousOf: boolean, out: ScanOutput): void {
    const nw = windows.length;
    while (scratchCountries.length < nw) scratchCountries.push([]);
    for (let i = 0; i < nw; i++) scratchCountries[i]!.length = 0;
    const self = ip === null ? -1 : (this.index.get(ip) ?? -1);
    let best = -1;
    for (let k = 0; k < this.size; k++) {
      const last = this.last[k]!;
      const c = this.country[k]!;
      if (previousOf && k !== self && c !== 0 && (best < 0 || last >= this.last[best]!)) best = k;
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
      for (let j = 0; j < this.netKeys.length; j++) if (this.netMembers[j]! > 0 && this.netNewest[j]! > since) nets++;
      out.distinctPrefixes[i] = nets;
    }
    const mj = mine === null ? undefined : this.netIndex.get(mine);
    if (mj !== undefined) out.prefixFirst = this.netFirst[mj]!;
    if (best >= 0) {
      out.previousIp = this.ips[best]!;
      out.previous = this.stat(best);
    }
  }
}
