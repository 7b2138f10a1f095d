import type { EpochMs, SenderId } from '../../engine/types.ts';
import type {
  CounterLayout,
  CounterStore,
  Exceeded,
  ObserveRequest,
  SenderSnapshot,
  SourceIpStat,
  TopEntry,
  TopMetric,
  WindowCount,
} from '../counter-store.ts';
import { intToIpv4, ipv4ToInt } from './ip-key.ts';
import { addSaturating, advance, ringShape, sum, sumAt, type RingShape } from './ring-series.ts';

// Hot counters of the embedded backend. One slot per sender ID in flat typed arrays
// (no object per sender), so a million tracked IDs cost a few hundred bytes each;
// docs/performance.md has the measured figure. Only senders seen from more than one
// address get a small JS map of their addresses.

interface IpStat {
  count: number;
  first: number;
  last: number;
}

/** Beyond this many addresses per sender the least recently seen one is forgotten. */
const MAX_IPS_PER_SENDER = 256;
const IP_NONE = 0;
const IP_INLINE = 1;
const IP_OVERFLOW = 2;

export interface CounterSnapshotData {
  readonly layout: CounterLayout;
  readonly senders: readonly string[];
  readonly arrays: Readonly<Record<string, Buffer>>;
  readonly overflow: readonly [number, [string, IpStat][]][];
}

export class MemoryCounterStore implements CounterStore {
  readonly layout: CounterLayout;
  private readonly rateShapes: readonly RingShape[];
  private readonly breachShape: RingShape;
  private readonly authShape: RingShape;
  private readonly rateStride: number;
  private readonly nWin: number;

  private capacity = 0;
  private count = 0;
  private readonly slots = new Map<string, number>();
  private senders: (string | undefined)[] = [];
  private free: number[] = [];

  private rateCells = new Uint16Array(0);
  private rateLast = new Uint32Array(0);
  private breachCells = new Uint16Array(0);
  private breachLast = new Uint32Array(0);
  private authCells = new Uint16Array(0);
  private authLast = new Uint32Array(0);
  private ip4 = new Uint32Array(0);
  private ipCount = new Uint32Array(0);
  private ipFirst = new Uint32Array(0);
  private ipLast = new Uint32Array(0);
  private ipMode = new Uint8Array(0);
  private baseValue = new Float32Array(0);
  private baseTime = new Uint32Array(0);
  private firstSeen = new Uint32Array(0);
  private lastActive = new Uint32Array(0);
  private suspended = new Uint8Array(0);
  private readonly overflow = new Map<number, Map<string, IpStat>>();

  constructor(layout: CounterLayout, initialCapacity = 1024) {
    this.layout = layout;
    this.nWin = layout.windows.length;
    this.rateShapes = layout.windows.map((w) => ringShape(w, layout.subBuckets));
    this.rateStride = this.rateShapes.reduce((n, s) => n + 2 * s.cells, 0);
    this.breachShape = ringShape(layout.breachWindow, 4);
    this.authShape = ringShape(layout.authFailureWindow, 4);
    this.grow(initialCapacity);
  }

  private grow(capacity: number): void {
    const resize = <T extends Uint8Array | Uint16Array | Uint32Array | Float32Array>(a: T, per: number): T => {
      const b = new (a.constructor as new (n: number) => T)(capacity * per);
      b.set(a);
      return b;
    };
    this.rateCells = resize(this.rateCells, this.rateStride);
    this.rateLast = resize(this.rateLast, this.nWin);
    this.breachCells = resize(this.breachCells, this.breachShape.cells);
    this.breachLast = resize(this.breachLast, 1);
    this.authCells = resize(this.authCells, this.authShape.cells);
    this.authLast = resize(this.authLast, 1);
    this.ip4 = resize(this.ip4, 1);
    this.ipCount = resize(this.ipCount, 1);
    this.ipFirst = resize(this.ipFirst, 1);
    this.ipLast = resize(this.ipLast, 1);
    this.ipMode = resize(this.ipMode, 1);
    this.baseValue = resize(this.baseValue, 1);
    this.baseTime = resize(this.baseTime, 1);
    this.firstSeen = resize(this.firstSeen, 1);
    this.lastActive = resize(this.lastActive, 1);
    this.suspended = resize(this.suspended, 1);
    this.senders.length = capacity;
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
    this.senders[slot] = sender;
    return slot;
  }

  private rateBase(slot: number, w: number): number {
    let off = slot * this.rateStride;
    for (let i = 0; i < w; i++) off += 2 * this.rateShapes[i]!.cells;
    return off;
  }

  observeSync(req: ObserveRequest): SenderSnapshot {
    const nowSec = Math.floor(req.now / 1000);
    const slot = this.slotOf(req.sender, true);
    if (this.firstSeen[slot] === 0) this.firstSeen[slot] = nowSec;
    this.lastActive[slot] = nowSec;

    // Bring every rate ring to now and read the counts before this request.
    const before: WindowCount[] = new Array(this.nWin);
    const current = new Array<number>(this.nWin);
    for (let w = 0; w < this.nWin; w++) {
      const shape = this.rateShapes[w]!;
      const base = this.rateBase(slot, w);
      const at = advance(this.rateCells, base, this.rateLast, slot * this.nWin + w, shape, nowSec);
      current[w] = at - base;
      before[w] = { messages: sum(this.rateCells, base, shape), recipients: sum(this.rateCells, base + shape.cells, shape) };
    }

    const isSuspended = this.suspended[slot] === 1;
    let exceeded: Exceeded | null = null;
    if (req.stage !== 'auth' && !isSuspended) {
      for (let w = 0; w < req.limits.length && w < this.nWin && exceeded === null; w++) {
        const lim = req.limits[w]!;
        const b = before[w]!;
        const win = this.layout.windows[w]!;
        if (req.messages > 0 && b.messages + req.messages > lim.messages) {
          exceeded = { window: win, series: 'messages', count: b.messages, limit: lim.messages };
        } else if (req.recipients > 0 && b.recipients + req.recipients > lim.recipients) {
          exceeded = { window: win, series: 'recipients', count: b.recipients, limit: lim.recipients };
        }
      }
    }
    const admitted = exceeded === null && !isSuspended;

    let windows: readonly WindowCount[] = before;
    if (req.stage === 'message' && admitted) {
      windows = before.map((b, w) => {
        const base = this.rateBase(slot, w);
        const shape = this.rateShapes[w]!;
        addSaturating(this.rateCells, base + current[w]!, req.messages);
        addSaturating(this.rateCells, base + shape.cells + current[w]!, req.recipients);
        return { messages: b.messages + req.messages, recipients: b.recipients + req.recipients };
      });
    }

    const bBase = slot * this.breachShape.cells;
    const bAt = advance(this.breachCells, bBase, this.breachLast, slot, this.breachShape, nowSec);
    // A refused transaction counts once: at its first RCPT (messages > 0) or at its end.
    if (exceeded !== null && req.messages > 0) addSaturating(this.breachCells, bAt, 1);
    const breaches = sum(this.breachCells, bBase, this.breachShape);

    const aBase = slot * this.authShape.cells;
    const aAt = advance(this.authCells, aBase, this.authLast, slot, this.authShape, nowSec);
    const authFailures = sum(this.authCells, aBase, this.authShape);
    if (req.stage === 'auth' && req.authOk === false) addSaturating(this.authCells, aAt, 1);

    const baselinePerHour = this.baselineRate(slot, nowSec);
    if (req.stage === 'message' && admitted) {
      this.baseValue[slot] = (baselinePerHour * this.layout.baselineTau) / 3600 + req.messages;
      this.baseTime[slot] = nowSec;
    }

    // An address counts once per transaction (at its first RCPT) and per successful login.
    // Failed logins do not count: else anyone could get an ID suspended by failing from many addresses.
    if (req.ip !== null && ((req.stage === 'rcpt' && req.messages > 0) || (req.stage === 'auth' && req.authOk === true))) {
      this.noteIp(slot, req.ip, nowSec);
    }
    const distinctIps = this.layout.distinctWindows.map((w) => this.distinctSince(slot, nowSec - w));

    return {
      suspended: isSuspended,
      admitted,
      exceeded,
      windows,
      breaches,
      authFailures,
      distinctIps,
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

  private noteIp(slot: number, ip: string, nowSec: number): void {
    const mode = this.ipMode[slot];
    const v4 = ipv4ToInt(ip);
    if (mode === IP_NONE && v4 !== 0) {
      this.ipMode[slot] = IP_INLINE;
      this.ip4[slot] = v4;
      this.ipCount[slot] = 1;
      this.ipFirst[slot] = nowSec;
      this.ipLast[slot] = nowSec;
      return;
    }
    if (mode === IP_INLINE && v4 === this.ip4[slot]) {
      this.ipCount[slot]!++;
      this.ipLast[slot] = nowSec;
      return;
    }
    let set = this.overflow.get(slot);
    if (set === undefined) {
      set = new Map();
      if (mode === IP_INLINE) {
        set.set(intToIpv4(this.ip4[slot]!), { count: this.ipCount[slot]!, first: this.ipFirst[slot]!, last: this.ipLast[slot]! });
      }
      this.overflow.set(slot, set);
      this.ipMode[slot] = IP_OVERFLOW;
    }
    const stat = set.get(ip);
    if (stat) {
      stat.count++;
      stat.last = nowSec;
      // Keep insertion order = recency order, so eviction takes the first entry.
      set.delete(ip);
      set.set(ip, stat);
      return;
    }
    if (set.size >= MAX_IPS_PER_SENDER) set.delete(set.keys().next().value!);
    set.set(ip, { count: 1, first: nowSec, last: nowSec });
  }

  private distinctSince(slot: number, sinceSec: number): number {
    const mode = this.ipMode[slot];
    if (mode === IP_INLINE) return this.ipLast[slot]! > sinceSec ? 1 : 0;
    if (mode !== IP_OVERFLOW) return 0;
    let n = 0;
    for (const s of this.overflow.get(slot)!.values()) if (s.last > sinceSec) n++;
    return n;
  }

  async observe(req: ObserveRequest): Promise<SenderSnapshot> {
    return this.observeSync(req);
  }

  peekSync(sender: SenderId, now: EpochMs): { windows: WindowCount[]; distinctIps: number[] } {
    const slot = this.slotOf(sender, false);
    const nowSec = Math.floor(now / 1000);
    if (slot < 0) return { windows: this.rateShapes.map(() => ({ messages: 0, recipients: 0 })), distinctIps: this.layout.distinctWindows.map(() => 0) };
    return {
      windows: this.rateShapes.map((shape, w) => {
        const base = this.rateBase(slot, w);
        const last = this.rateLast[slot * this.nWin + w]!;
        return {
          messages: sumAt(this.rateCells, base, last, shape, nowSec),
          recipients: sumAt(this.rateCells, base + shape.cells, last, shape, nowSec),
        };
      }),
      distinctIps: this.layout.distinctWindows.map((w) => this.distinctSince(slot, nowSec - w)),
    };
  }

  async peek(sender: SenderId, now: EpochMs): Promise<{ windows: readonly WindowCount[]; distinctIps: readonly number[] }> {
    return this.peekSync(sender, now);
  }

  async setSuspended(sender: SenderId, value: boolean): Promise<void> {
    const slot = this.slotOf(sender, value);
    if (slot >= 0) this.suspended[slot] = value ? 1 : 0;
  }

  async sourceIps(sender: SenderId): Promise<readonly SourceIpStat[]> {
    const slot = this.slotOf(sender, false);
    if (slot < 0) return [];
    const toStat = (ip: string, s: IpStat): SourceIpStat => ({ ip, count: s.count, firstSeen: s.first * 1000, lastSeen: s.last * 1000 });
    if (this.ipMode[slot] === IP_INLINE) {
      return [toStat(intToIpv4(this.ip4[slot]!), { count: this.ipCount[slot]!, first: this.ipFirst[slot]!, last: this.ipLast[slot]! })];
    }
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
      if (metric === 'source-ips') {
        value = this.distinctSince(slot, nowSec - windowSeconds);
      } else {
        const base = this.rateBase(slot, w) + (metric === 'recipients' ? shape.cells : 0);
        value = sumAt(this.rateCells, base, this.rateLast[slot * this.nWin + w]!, shape, nowSec);
      }
      if (value > 0) out.push({ sender: sender as SenderId, value });
    }
    out.sort((a, b) => b.value - a.value || (a.sender < b.sender ? -1 : 1));
    return out.slice(0, limit);
  }

  /** Forgets senders idle for longer than `idleSeconds`; returns how many. */
  evictIdle(now: EpochMs, idleSeconds: number): number {
    const cutoff = Math.floor(now / 1000) - idleSeconds;
    let evicted = 0;
    for (const [sender, slot] of this.slots) {
      if (this.lastActive[slot]! >= cutoff || this.suspended[slot] === 1) continue;
      this.slots.delete(sender);
      this.senders[slot] = undefined;
      this.clearSlot(slot);
      this.free.push(slot);
      evicted++;
    }
    return evicted;
  }

  private clearSlot(slot: number): void {
    this.rateCells.fill(0, slot * this.rateStride, (slot + 1) * this.rateStride);
    this.rateLast.fill(0, slot * this.nWin, (slot + 1) * this.nWin);
    this.breachCells.fill(0, slot * this.breachShape.cells, (slot + 1) * this.breachShape.cells);
    this.authCells.fill(0, slot * this.authShape.cells, (slot + 1) * this.authShape.cells);
    for (const a of [this.breachLast, this.authLast, this.ip4, this.ipCount, this.ipFirst, this.ipLast, this.baseTime, this.firstSeen, this.lastActive]) a[slot] = 0;
    this.ipMode[slot] = 0;
    this.baseValue[slot] = 0;
    this.suspended[slot] = 0;
    this.overflow.delete(slot);
  }

  async size(): Promise<number> {
    return this.slots.size;
  }

  async close(): Promise<void> {}

  /** Everything needed to restore the counters after a restart. */
  exportState(): CounterSnapshotData {
    const n = this.count;
    const bytes = (a: Uint8Array | Uint16Array | Uint32Array | Float32Array, per: number): Buffer =>
      Buffer.from(a.buffer, a.byteOffset, n * per * a.BYTES_PER_ELEMENT);
    return {
      layout: this.layout,
      senders: this.senders.slice(0, n).map((s) => s ?? ''),
      arrays: {
        rateCells: bytes(this.rateCells, this.rateStride),
        rateLast: bytes(this.rateLast, this.nWin),
        breachCells: bytes(this.breachCells, this.breachShape.cells),
        breachLast: bytes(this.breachLast, 1),
        authCells: bytes(this.authCells, this.authShape.cells),
        authLast: bytes(this.authLast, 1),
        ip4: bytes(this.ip4, 1),
        ipCount: bytes(this.ipCount, 1),
        ipFirst: bytes(this.ipFirst, 1),
        ipLast: bytes(this.ipLast, 1),
        ipMode: bytes(this.ipMode, 1),
        baseValue: bytes(this.baseValue, 1),
        baseTime: bytes(this.baseTime, 1),
        firstSeen: bytes(this.firstSeen, 1),
        lastActive: bytes(this.lastActive, 1),
        suspended: bytes(this.suspended, 1),
      },
      overflow: [...this.overflow.entries()].map(([slot, set]) => [slot, [...set.entries()]]),
    };
  }

  /** Restores exported counters; returns false (and keeps the empty state) when the layout changed. */
  importState(data: CounterSnapshotData): boolean {
    if (JSON.stringify(data.layout) !== JSON.stringify(this.layout)) return false;
    const n = data.senders.length;
    if (n > this.capacity) this.grow(Math.max(n, this.capacity * 2));
    const fields = this as unknown as Record<string, Uint8Array | Uint16Array | Uint32Array | Float32Array>;
    for (const [name, buf] of Object.entries(data.arrays)) {
      const target = fields[name];
      if (!target) continue;
      new Uint8Array(target.buffer, target.byteOffset, buf.byteLength).set(buf);
    }
    this.count = n;
    data.senders.forEach((s, slot) => {
      if (s === '') {
        this.free.push(slot);
      } else {
        this.slots.set(s, slot);
        this.senders[slot] = s;
      }
    });
    for (const [slot, entries] of data.overflow) this.overflow.set(slot, new Map(entries));
    return true;
  }
}
