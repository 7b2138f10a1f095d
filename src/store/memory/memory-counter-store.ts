import type { EpochMs, SenderId } from '../../engine/types.ts';
import type {
  CampaignRequest,
  CampaignSnapshot,
  CounterLayout,
  CounterStore,
  Exceeded,
  ObserveRequest,
  PeekResult,
  Place,
  PreviousPlace,
  SenderSnapshot,
  SourceIpStat,
  TopEntry,
  TopMetric,
  WindowCount,
} from '../counter-store.ts';
import { sourcePrefix } from '../source-prefix.ts';
import { CampaignTracker } from './campaign-tracker.ts';
import { intToIpv4, ipv4ToInt } from './ip-key.ts';
import { addSaturating, advance, ringShape, sum, sumAt, type RingShape } from './ring-series.ts';

// Hot counters of the embedded backend. One slot per sender ID in flat typed arrays
// (no object per sender), so a million tracked IDs cost a few hundred bytes each;
// docs/performance.md has the measured figure. A sender's first IPv4 address lives in
// the slot; only senders seen from more than one address get a small map of them.

interface IpStat {
  count: number;
  first: number;
  last: number;
  /** Packed country code, 0 when unknown. */
  country: number;
  lat: number;
  lon: number;
}

/** Beyond this many addresses per sender the least recently seen one is forgotten. */
const MAX_IPS_PER_SENDER = 256;
const MODE_MASK = 3;
const IP_NONE = 0;
const IP_INLINE = 1;
const IP_OVERFLOW = 2;
const SUSPENDED = 4;
/** Coordinates are stored as Int16 hundredths of a degree; this marks "none". */
const NO_COORD = -32768;
/** "--": internal or unknown address; stored, but not counted as a country. */
const INTERNAL = 0x2d2d;

function packCountry(cc: string): number {
  return cc.length === 2 ? (cc.charCodeAt(0) << 8) | cc.charCodeAt(1) : 0;
}

function unpackCountry(v: number): string | null {
  return v === 0 ? null : String.fromCharCode(v >> 8, v & 255);
}

function coord(v: number): number {
  return Number.isFinite(v) ? Math.round(v * 100) : NO_COORD;
}

function toPrevious(addr: string, s: IpStat): PreviousPlace | null {
  return s.country === 0 ? null : { ip: addr, place: { country: unpackCountry(s.country)!, lat: uncoord(s.lat), lon: uncoord(s.lon) }, t: s.last * 1000 };
}

function uncoord(v: number): number {
  return v === NO_COORD ? NaN : v / 100;
}

/**
 * The network of an address as a map key, without allocating for IPv4 (the usual case):
 * the top 24 bits as a number; IPv6 as sourcePrefix's text ("h:h:h::/48"), IPv4-mapped
 * IPv6 as its IPv4 number.
 */
function networkKey(ip: string): number | string {
  const v4 = ipv4ToInt(ip);
  if (v4 !== 0) return v4 >>> 8;
  const p = sourcePrefix(ip);
  if (p === null) return ip;
  if (p.endsWith('/24')) return ipv4ToInt(p.slice(0, -3)) >>> 8;
  return p;
}

export interface CounterSnapshotData {
  readonly version: 2;
  readonly layout: CounterLayout;
  readonly slots: readonly [string, number][];
  readonly count: number;
  readonly arrays: Readonly<Record<string, Uint8Array>>;
  readonly overflow: readonly [number, [string, IpStat][]][];
}

const ARRAY_NAMES = ['cells', 'lastSec', 'firstSeen', 'ip4', 'ipCount', 'ipFirst', 'ipLast', 'ipCountry', 'ipLat', 'ipLon', 'flags', 'baseValue', 'baseTime'] as const;

export class MemoryCounterStore implements CounterStore {
  readonly layout: CounterLayout;
  private readonly rateShapes: readonly RingShape[];
  private readonly rateOffsets: readonly number[];
  private readonly breachShape: RingShape;
  private readonly breachOffset: number;
  private readonly authShape: RingShape;
  private readonly authOffset: number;
  private readonly stride: number;
  private readonly nWin: number;

  private capacity = 0;
  private count = 0;
  private readonly slots = new Map<string, number>();
  private free: number[] = [];

  private cells = new Uint16Array(0);
  private lastSec = new Uint32Array(0);
  private firstSeen = new Uint32Array(0);
  private ip4 = new Uint32Array(0);
  private ipCount = new Uint32Array(0);
  private ipFirst = new Uint32Array(0);
  private ipLast = new Uint32Array(0);
  private ipCountry = new Uint16Array(0);
  private ipLat = new Int16Array(0);
  private ipLon = new Int16Array(0);
  private flags = new Uint8Array(0);
  private baseValue = new Float32Array(0);
  private baseTime = new Uint32Array(0);
  private readonly overflow = new Map<number, Map<string, IpStat>>();

  constructor(layout: CounterLayout, initialCapacity = 1024) {
    this.layout = layout;
    this.nWin = layout.windows.length;
    this.rateShapes = layout.windows.map((w) => ringShape(w, layout.subBuckets));
    const offsets: number[] = [];
    let off = 0;
    for (const s of this.rateShapes) {
      offsets.push(off);
      off += 2 * s.cells;
    }
    this.rateOffsets = offsets;
    this.breachShape = ringShape(layout.breachWindow, 4);
    this.breachOffset = off;
    off += this.breachShape.cells;
    this.authShape = ringShape(layout.authFailureWindow, 4);
    this.authOffset = off;
    off += this.authShape.cells;
    this.stride = off;
    this.grow(initialCapacity);
  }

  private grow(capacity: number): void {
    type Arr = Uint8Array | Uint16Array | Int16Array | Uint32Array | Float32Array;
    const resize = <T extends Arr>(a: T, per: number): T => {
      const b = new (a.constructor as new (n: number) => T)(capacity * per);
      b.set(a);
      return b;
    };
    this.cells = resize(this.cells, this.stride);
    this.lastSec = resize(this.lastSec, 1);
    this.firstSeen = resize(this.firstSeen, 1);
    this.ip4 = resize(this.ip4, 1);
    this.ipCount = resize(this.ipCount, 1);
    this.ipFirst = resize(this.ipFirst, 1);
    this.ipLast = resize(this.ipLast, 1);
    this.ipCountry = resize(this.ipCountry, 1);
    this.ipLat = resize(this.ipLat, 1);
    this.ipLon = resize(this.ipLon, 1);
    this.flags = resize(this.flags, 1);
    this.baseValue = resize(this.baseValue, 1);
    this.baseTime = resize(this.baseTime, 1);
    this.capacity = capacity;
  }

  private slotOf(sender: string, create: boolean): number {
    const found = this.slots.get(sender);
    if (found !== undefined || !create) return found ?? -1;
    let slot = this.free.pop();
    if (slot === undefined) {
      if (this.count === this.capacity) this.grow(this.capacity * 2);
      slot = this.count++;
    }
    this.slots.set(sender, slot);
    return slot;
  }

  observeSync(req: ObserveRequest): SenderSnapshot {
    const nowSec = Math.floor(req.now / 1000);
    const slot = this.slotOf(req.sender, true);
    const prevSec = this.lastSec[slot]!;
    if (this.firstSeen[slot] === 0) this.firstSeen[slot] = nowSec;
    if (nowSec > prevSec) this.lastSec[slot] = nowSec;
    const row = slot * this.stride;

    // Bring every rate ring to now and read the counts before this request.
    const before: WindowCount[] = new Array(this.nWin);
    const current: number[] = new Array(this.nWin);
    for (let w = 0; w < this.nWin; w++) {
      const shape = this.rateShapes[w]!;
      const base = row + this.rateOffsets[w]!;
      const at = advance(this.cells, base, shape, prevSec, nowSec) - base;
      advance(this.cells, base + shape.cells, shape, prevSec, nowSec);
      current[w] = at;
      before[w] = { messages: sum(this.cells, base, shape), recipients: sum(this.cells, base + shape.cells, shape) };
    }

    const isSuspended = (this.flags[slot]! & SUSPENDED) !== 0;
    let exceeded: Exceeded | null = null;
    if (req.stage !== 'auth' && !isSuspended) {
      for (let w = 0; w < req.limits.length && w < this.nWin && exceeded === null; w++) {
        const lim = req.limits[w]!;
        const b = before[w]!;
        if (req.messages > 0 && b.messages + req.messages > lim.messages) {
          exceeded = { window: this.layout.windows[w]!, series: 'messages', count: b.messages, limit: lim.messages };
        } else if (req.recipients > 0 && b.recipients + req.recipients > lim.recipients) {
          exceeded = { window: this.layout.windows[w]!, series: 'recipients', count: b.recipients, limit: lim.recipients };
        }
      }
    }
    const admitted = exceeded === null && !isSuspended;

    let windows: readonly WindowCount[] = before;
    if (req.stage === 'message' && admitted) {
      windows = before.map((b, w) => {
        const base = row + this.rateOffsets[w]!;
        addSaturating(this.cells, base + current[w]!, req.messages);
        addSaturating(this.cells, base + this.rateShapes[w]!.cells + current[w]!, req.recipients);
        return { messages: b.messages + req.messages, recipients: b.recipients + req.recipients };
      });
    }

    const bBase = row + this.breachOffset;
    const bAt = advance(this.cells, bBase, this.breachShape, prevSec, nowSec);
    // A refused transaction counts once: at its first RCPT (messages > 0) or at its end.
    if (exceeded !== null && req.messages > 0) addSaturating(this.cells, bAt, 1);
    const breaches = sum(this.cells, bBase, this.breachShape);

    const aBase = row + this.authOffset;
    const aAt = advance(this.cells, aBase, this.authShape, prevSec, nowSec);
    const authFailures = sum(this.cells, aBase, this.authShape);
    if (req.stage === 'auth' && req.authOk === false) addSaturating(this.cells, aAt, 1);

    const baselinePerHour = this.baselineRate(slot, nowSec);
    if (req.stage === 'message' && admitted) {
      this.baseValue[slot] = (baselinePerHour * this.layout.baselineTau) / 3600 + req.messages;
      this.baseTime[slot] = nowSec;
    }

    const place = req.place ?? null;
    const previous = place !== null && req.ip !== null ? this.previousPlace(slot, req.ip) : null;
    // An address counts once per transaction (at its first RCPT) and per successful login.
    // Failed logins do not count: else anyone could get an ID suspended by failing from many addresses.
    if (req.ip !== null && ((req.stage === 'rcpt' && req.messages > 0) || (req.stage === 'auth' && req.authOk === true))) {
      this.noteIp(slot, req.ip, nowSec, place);
    }
    const dw = this.layout.distinctWindows;
    const distinctIps = new Array<number>(dw.length);
    const distinctCountries = new Array<number>(dw.length);
    for (let i = 0; i < dw.length; i++) {
      distinctIps[i] = this.distinctIpsSince(slot, nowSec - dw[i]!);
      distinctCountries[i] = this.distinctCountriesSince(slot, nowSec - dw[i]!);
    }
    const distinctPrefixes = new Array<number>(dw.length).fill(0);
    const prefixFirst = this.prefixStats(slot, nowSec, req.ip, distinctPrefixes);

    return {
      suspended: isSuspended,
      admitted,
      exceeded,
      windows,
      breaches,
      authFailures,
      distinctIps,
      distinctCountries,
      distinctPrefixes,
      prefixFirstSeen: prefixFirst === 0 ? null : prefixFirst * 1000,
      previous,
      baselinePerHour,
      historySeconds: nowSec - this.firstSeen[slot]!,
    };
  }

  /** Decayed messages per hour at nowSec, from the stored value at its time. */
  private baselineRate(slot: number, nowSec: number): number {
    const v = this.baseValue[slot]!;
    if (v === 0) return 0;
    const dt = Math.max(0, nowSec - this.baseTime[slot]!);
    const tau = this.layout.baselineTau;
    return ((v * Math.exp(-dt / tau)) / tau) * 3600;
  }

  private inlineStat(slot: number): IpStat {
    return {
      count: this.ipCount[slot]!,
      first: this.ipFirst[slot]!,
      last: this.ipLast[slot]!,
      country: this.ipCountry[slot]!,
      lat: this.ipLat[slot]!,
      lon: this.ipLon[slot]!,
    };
  }

  private noteIp(slot: number, ip: string, nowSec: number, place: Place | null): void {
    const mode = this.flags[slot]! & MODE_MASK;
    const v4 = ipv4ToInt(ip);
    const cc = place ? packCountry(place.country) : 0;
    if (mode === IP_NONE && v4 !== 0) {
      this.flags[slot] = (this.flags[slot]! & ~MODE_MASK) | IP_INLINE;
      this.ip4[slot] = v4;
      this.ipCount[slot] = 1;
      this.ipFirst[slot] = nowSec;
      this.ipLast[slot] = nowSec;
      this.ipCountry[slot] = cc;
      this.ipLat[slot] = place ? coord(place.lat) : NO_COORD;
      this.ipLon[slot] = place ? coord(place.lon) : NO_COORD;
      return;
    }
    if (mode === IP_INLINE && v4 === this.ip4[slot]) {
      this.ipCount[slot]!++;
      this.ipLast[slot] = nowSec;
      if (place) {
        this.ipCountry[slot] = cc;
        this.ipLat[slot] = coord(place.lat);
        this.ipLon[slot] = coord(place.lon);
      }
      return;
    }
    let set = this.overflow.get(slot);
    if (set === undefined) {
      set = new Map();
      if (mode === IP_INLINE) set.set(intToIpv4(this.ip4[slot]!), this.inlineStat(slot));
      this.overflow.set(slot, set);
      this.flags[slot] = (this.flags[slot]! & ~MODE_MASK) | IP_OVERFLOW;
    }
    const stat = set.get(ip);
    if (stat) {
      stat.count++;
      stat.last = nowSec;
      if (place) {
        stat.country = cc;
        stat.lat = coord(place.lat);
        stat.lon = coord(place.lon);
      }
      // Keep insertion order = recency order, so eviction takes the first entry.
      set.delete(ip);
      set.set(ip, stat);
      return;
    }
    if (set.size >= MAX_IPS_PER_SENDER) set.delete(set.keys().next().value!);
    set.set(ip, { count: 1, first: nowSec, last: nowSec, country: cc, lat: place ? coord(place.lat) : NO_COORD, lon: place ? coord(place.lon) : NO_COORD });
  }

  private previousPlace(slot: number, ip: string): PreviousPlace | null {
    const mode = this.flags[slot]! & MODE_MASK;
    if (mode === IP_INLINE) {
      const addr = intToIpv4(this.ip4[slot]!);
      return addr === ip ? null : toPrevious(addr, this.inlineStat(slot));
    }
    if (mode !== IP_OVERFLOW) return null;
    // Runs on every request with a place: no closure (tsx wraps each one in __name).
    let bestIp: string | null = null;
    let best: IpStat | null = null;
    for (const [addr, s] of this.overflow.get(slot)!) {
      if (addr !== ip && s.country !== 0 && (best === null || s.last >= best.last)) {
        best = s;
        bestIp = addr;
      }
    }
    return best !== null && bestIp !== null ? toPrevious(bestIp, best) : null;
  }

  private distinctIpsSince(slot: number, sinceSec: number): number {
    const mode = this.flags[slot]! & MODE_MASK;
    if (mode === IP_INLINE) return this.ipLast[slot]! > sinceSec ? 1 : 0;
    if (mode !== IP_OVERFLOW) return 0;
    let n = 0;
    for (const s of this.overflow.get(slot)!.values()) if (s.last > sinceSec) n++;
    return n;
  }

  /**
   * Distinct prefixes per distinct window (into `out`) and the first-seen second of `ip`'s
   * prefix (0 when not recorded), derived from the kept addresses at read time: nothing more
   * is stored per sender (docs/performance.md).
   */
  private prefixStats(slot: number, nowSec: number, ip: string | null, out: number[]): number {
    const mode = this.flags[slot]! & MODE_MASK;
    const dw = this.layout.distinctWindows;
    if (mode === IP_INLINE) {
      const last = this.ipLast[slot]!;
      for (let i = 0; i < dw.length; i++) out[i] = last > nowSec - dw[i]! ? 1 : 0;
      // The inline address is IPv4: same network when the first 24 bits agree.
      const v4 = ip === null ? 0 : ipv4ToInt(ip);
      return v4 !== 0 && v4 >>> 8 === this.ip4[slot]! >>> 8 ? this.ipFirst[slot]! : 0;
    }
    if (mode !== IP_OVERFLOW) return 0;
    const mine = ip === null ? null : networkKey(ip);
    let first = 0;
    // One pass: each network's newest time, then a count per window.
    const newest = new Map<number | string, number>();
    for (const [addr, s] of this.overflow.get(slot)!) {
      const p = networkKey(addr);
      if (p === mine && (first === 0 || s.first < first)) first = s.first;
      if (s.last > (newest.get(p) ?? -1)) newest.set(p, s.last);
    }
    for (let i = 0; i < dw.length; i++) {
      const since = nowSec - dw[i]!;
      let n = 0;
      for (const t of newest.values()) if (t > since) n++;
      out[i] = n;
    }
    return first;
  }

  private distinctCountriesSince(slot: number, sinceSec: number): number {
    const mode = this.flags[slot]! & MODE_MASK;
    if (mode === IP_INLINE) {
      const c = this.ipCountry[slot]!;
      return this.ipLast[slot]! > sinceSec && c !== 0 && c !== INTERNAL ? 1 : 0;
    }
    if (mode !== IP_OVERFLOW) return 0;
    // Few countries per sender: a linear scan of a small array beats a Set per call.
    const seen: number[] = [];
    for (const s of this.overflow.get(slot)!.values()) {
      if (s.last > sinceSec && s.country !== 0 && s.country !== INTERNAL && !seen.includes(s.country)) seen.push(s.country);
    }
    return seen.length;
  }

  observe(req: ObserveRequest): SenderSnapshot {
    return this.observeSync(req);
  }

  peekSync(sender: SenderId, now: EpochMs): PeekResult {
    const slot = this.slotOf(sender, false);
    const nowSec = Math.floor(now / 1000);
    const dw = this.layout.distinctWindows;
    if (slot < 0) {
      return { windows: this.rateShapes.map(() => ({ messages: 0, recipients: 0 })), distinctIps: dw.map(() => 0), distinctCountries: dw.map(() => 0), suspended: false };
    }
    const prevSec = this.lastSec[slot]!;
    const row = slot * this.stride;
    return {
      windows: this.rateShapes.map((shape, w) => ({
        messages: sumAt(this.cells, row + this.rateOffsets[w]!, shape, prevSec, nowSec),
        recipients: sumAt(this.cells, row + this.rateOffsets[w]! + shape.cells, shape, prevSec, nowSec),
      })),
      distinctIps: dw.map((w) => this.distinctIpsSince(slot, nowSec - w)),
      distinctCountries: dw.map((w) => this.distinctCountriesSince(slot, nowSec - w)),
      suspended: (this.flags[slot]! & SUSPENDED) !== 0,
    };
  }

  async peek(sender: SenderId, now: EpochMs): Promise<PeekResult> {
    return this.peekSync(sender, now);
  }

  async setSuspended(sender: SenderId, value: boolean): Promise<void> {
    const slot = this.slotOf(sender, value);
    if (slot < 0) return;
    this.flags[slot] = value ? this.flags[slot]! | SUSPENDED : this.flags[slot]! & ~SUSPENDED;
  }

  async sourceIps(sender: SenderId): Promise<readonly SourceIpStat[]> {
    return this.sourceIpsSync(sender);
  }

  sourceIpsSync(sender: SenderId): readonly SourceIpStat[] {
    const slot = this.slotOf(sender, false);
    if (slot < 0) return [];
    const toStat = (ip: string, s: IpStat): SourceIpStat => ({ ip, country: unpackCountry(s.country), count: s.count, firstSeen: s.first * 1000, lastSeen: s.last * 1000 });
    const mode = this.flags[slot]! & MODE_MASK;
    if (mode === IP_INLINE) return [toStat(intToIpv4(this.ip4[slot]!), this.inlineStat(slot))];
    const set = this.overflow.get(slot);
    if (!set) return [];
    return [...set.entries()].map(([ip, s]) => toStat(ip, s)).sort((a, b) => b.lastSeen - a.lastSeen);
  }

  async top(metric: TopMetric, windowSeconds: number, now: EpochMs, limit: number): Promise<readonly TopEntry[]> {
    const nowSec = Math.floor(now / 1000);
    // For messages/recipients use the smallest configured window that covers the request.
    let w = this.layout.windows.findIndex((s) => s >= windowSeconds);
    if (w < 0) w = this.nWin - 1;
    const shape = this.rateShapes[w]!;
    const out: TopEntry[] = [];
    for (const [sender, slot] of this.slots) {
      let value: number;
      if (metric === 'source-ips') value = this.distinctIpsSince(slot, nowSec - windowSeconds);
      else if (metric === 'countries') value = this.distinctCountriesSince(slot, nowSec - windowSeconds);
      else {
        const base = slot * this.stride + this.rateOffsets[w]! + (metric === 'recipients' ? shape.cells : 0);
        value = sumAt(this.cells, base, shape, this.lastSec[slot]!, nowSec);
      }
      if (value > 0) out.push({ sender: sender as SenderId, value });
    }
    out.sort((a, b) => b.value - a.value || (a.sender < b.sender ? -1 : 1));
    return out.slice(0, limit);
  }

  /** Forgets senders idle for longer than `idleSeconds` (never suspended ones); returns how many. */
  evictIdle(now: EpochMs, idleSeconds: number): number {
    const cutoff = Math.floor(now / 1000) - idleSeconds;
    let evicted = 0;
    for (const [sender, slot] of this.slots) {
      if (this.lastSec[slot]! >= cutoff || (this.flags[slot]! & SUSPENDED) !== 0) continue;
      this.slots.delete(sender);
      this.clearSlot(slot);
      this.free.push(slot);
      evicted++;
    }
    return evicted;
  }

  private clearSlot(slot: number): void {
    this.cells.fill(0, slot * this.stride, (slot + 1) * this.stride);
    for (const name of ARRAY_NAMES) if (name !== 'cells') this[name][slot] = 0;
    this.overflow.delete(slot);
  }

  async size(): Promise<number> {
    return this.slots.size;
  }

  /** Campaign fingerprints (countermeasure 2); not part of the exported state (the window is short). */
  readonly campaigns = new CampaignTracker();

  observeCampaignSync(req: CampaignRequest): CampaignSnapshot {
    return this.campaigns.observe(req);
  }

  async observeCampaign(req: CampaignRequest): Promise<CampaignSnapshot> {
    return this.campaigns.observe(req);
  }

  async close(): Promise<void> {}

  /** Everything needed to restore the counters after a restart. */
  exportState(): CounterSnapshotData {
    const arrays: Record<string, Uint8Array> = {};
    for (const name of ARRAY_NAMES) {
      const a = this[name];
      const per = name === 'cells' ? this.stride : 1;
      arrays[name] = new Uint8Array(a.buffer, a.byteOffset, this.count * per * a.BYTES_PER_ELEMENT);
    }
    return {
      version: 2,
      layout: this.layout,
      slots: [...this.slots.entries()],
      count: this.count,
      arrays,
      overflow: [...this.overflow.entries()].map(([slot, set]) => [slot, [...set.entries()]]),
    };
  }

  /** Restores exported counters; returns false (and keeps the empty state) when the layout changed. */
  importState(data: CounterSnapshotData): boolean {
    if (data.version !== 2 || JSON.stringify(data.layout) !== JSON.stringify(this.layout)) return false;
    if (data.count > this.capacity) this.grow(Math.max(data.count, this.capacity * 2));
    for (const name of ARRAY_NAMES) {
      const src = data.arrays[name];
      const target = this[name];
      if (src) new Uint8Array(target.buffer, target.byteOffset, src.byteLength).set(src);
    }
    this.count = data.count;
    const used = new Set<number>();
    for (const [sender, slot] of data.slots) {
      this.slots.set(sender, slot);
      used.add(slot);
    }
    for (let s = 0; s < data.count; s++) if (!used.has(s)) this.free.push(s);
    for (const [slot, entries] of data.overflow) this.overflow.set(slot, new Map(entries));
    return true;
  }
}
