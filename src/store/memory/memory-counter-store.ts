import type { EpochMs, SenderId } from '../../engine/types.ts';
import type {
  CampaignRequest,
  CampaignSnapshot,
  CounterLayout,
  CounterStore,
  Exceeded,
  ObserveRequest,
  PeekResult,
  PreviousPlace,
  SenderSnapshot,
  SourceIpStat,
  TopEntry,
  TopMetric,
  WindowCount,
} from '../counter-store.ts';
import { opensTransaction } from '../counter-store.ts';
import { CampaignTracker } from './campaign-tracker.ts';
import { addSaturating, advance, CELL_MAX, EVENT_CELL_MAX, ringShape, sum, sumAt, type RingShape } from './ring-series.ts';
import { bytesOf, resized, restoreBytes } from './typed-arrays.ts';
import { SourceAddressTable, uncoord, unpackCountry, type AddressStat, type AddressTableData } from './source-address-table.ts';

// Hot counters of the embedded backend. One slot per sender ID in flat typed arrays
// (no object per sender), so a million tracked IDs cost a few hundred bytes each;
// docs/performance.md has the measured figure. Rate rings are Uint16 cells, the refusal
// and failed-login rings Uint8 (their thresholds are capped below 255 by the config
// schema); the sender's client addresses live in a SourceAddressTable.

/** Bit of the address table's per-slot flags that this store owns. */
const SUSPENDED = 4;

export interface CounterSnapshotData {
  readonly version: 3;
  readonly layout: CounterLayout;
  readonly slots: readonly [string, number][];
  readonly count: number;
  readonly arrays: Readonly<Record<string, Uint8Array>>;
  readonly addresses: AddressTableData;
}

const ARRAY_NAMES = ['cells', 'events', 'lastSec', 'firstSeen', 'baseValue', 'baseTime'] as const;

function toPrevious(addr: string, s: AddressStat): PreviousPlace | null {
  return s.country === 0 ? null : { ip: addr, place: { country: unpackCountry(s.country)!, lat: uncoord(s.lat), lon: uncoord(s.lon) }, t: s.last * 1000 };
}

export class MemoryCounterStore implements CounterStore {
  readonly layout: CounterLayout;
  private readonly rateShapes: readonly RingShape[];
  private readonly rateOffsets: readonly number[];
  private readonly breachShape: RingShape;
  private readonly breachOffset: number;
  private readonly authShape: RingShape;
  private readonly authOffset: number;
  /** Cells per slot: rate rings (Uint16) and event rings (Uint8). */
  private readonly stride: number;
  private readonly eventStride: number;
  private readonly nWin: number;

  private capacity = 0;
  private count = 0;
  private readonly slots = new Map<string, number>();
  private free: number[] = [];

  private cells = new Uint16Array(0);
  private events = new Uint8Array(0);
  private lastSec = new Uint32Array(0);
  private firstSeen = new Uint32Array(0);
  private baseValue = new Float32Array(0);
  private baseTime = new Uint32Array(0);
  private readonly addresses = new SourceAddressTable();

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
    this.stride = off;
    this.breachShape = ringShape(layout.breachWindow, 4);
    this.breachOffset = 0;
    this.authShape = ringShape(layout.authFailureWindow, 4);
    this.authOffset = this.breachShape.cells;
    this.eventStride = this.breachShape.cells + this.authShape.cells;
    this.grow(initialCapacity);
  }

  private grow(capacity: number): void {
    this.cells = resized(this.cells, capacity * this.stride);
    this.events = resized(this.events, capacity * this.eventStride);
    this.lastSec = resized(this.lastSec, capacity);
    this.firstSeen = resized(this.firstSeen, capacity);
    this.baseValue = resized(this.baseValue, capacity);
    this.baseTime = resized(this.baseTime, capacity);
    this.addresses.grow(capacity);
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

  private isSuspended(slot: number): boolean {
    return (this.addresses.flags[slot]! & SUSPENDED) !== 0;
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

    const isSuspended = this.isSuspended(slot);
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
        addSaturating(this.cells, base + current[w]!, req.messages, CELL_MAX);
        addSaturating(this.cells, base + this.rateShapes[w]!.cells + current[w]!, req.recipients, CELL_MAX);
        return { messages: b.messages + req.messages, recipients: b.recipients + req.recipients };
      });
    }

    const eRow = slot * this.eventStride;
    const bBase = eRow + this.breachOffset;
    const bAt = advance(this.events, bBase, this.breachShape, prevSec, nowSec);
    // A refused transaction counts once: at its first RCPT or at its end.
    const opens = opensTransaction(req);
    if (exceeded !== null && opens) addSaturating(this.events, bAt, 1, EVENT_CELL_MAX);
    const breaches = sum(this.events, bBase, this.breachShape);

    const aBase = eRow + this.authOffset;
    const aAt = advance(this.events, aBase, this.authShape, prevSec, nowSec);
    const authFailures = sum(this.events, aBase, this.authShape);
    if (req.stage === 'auth' && req.authOk === false) addSaturating(this.events, aAt, 1, EVENT_CELL_MAX);

    const baselinePerHour = this.baselineRate(slot, nowSec);
    if (req.stage === 'message' && admitted) {
      this.baseValue[slot] = (baselinePerHour * this.layout.baselineTau) / 3600 + req.messages;
      this.baseTime[slot] = nowSec;
    }

    // An address counts once per transaction (at its first RCPT) and per successful login.
    // Failed logins do not count: else anyone could get an ID suspended by failing from many addresses.
    const evicted =
      req.ip !== null && ((req.stage === 'rcpt' && opens) || (req.stage === 'auth' && req.authOk === true))
        ? this.addresses.note(slot, req.ip, nowSec, req.place ?? null)
        : null;
    const wantPrevious = req.place != null && req.ip !== null;
    const f = this.addresses.figures(slot, nowSec, req.ip, this.layout.distinctWindows, wantPrevious, evicted);

    return {
      suspended: isSuspended,
      admitted,
      exceeded,
      windows,
      breaches,
      authFailures,
      distinctIps: f.distinctIps,
      distinctCountries: f.distinctCountries,
      distinctPrefixes: f.distinctPrefixes,
      prefixFirstSeen: f.prefixFirst === 0 ? null : f.prefixFirst * 1000,
      previous: f.previous === null ? null : toPrevious(f.previousIp!, f.previous),
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
    const f = this.addresses.figures(slot, nowSec, null, dw, false);
    return {
      windows: this.rateShapes.map((shape, w) => ({
        messages: sumAt(this.cells, row + this.rateOffsets[w]!, shape, prevSec, nowSec),
        recipients: sumAt(this.cells, row + this.rateOffsets[w]! + shape.cells, shape, prevSec, nowSec),
      })),
      distinctIps: f.distinctIps,
      distinctCountries: f.distinctCountries,
      suspended: this.isSuspended(slot),
    };
  }

  async peek(sender: SenderId, now: EpochMs): Promise<PeekResult> {
    return this.peekSync(sender, now);
  }

  async setSuspended(sender: SenderId, value: boolean): Promise<void> {
    const slot = this.slotOf(sender, value);
    if (slot < 0) return;
    const flags = this.addresses.flags;
    flags[slot] = value ? flags[slot]! | SUSPENDED : flags[slot]! & ~SUSPENDED;
  }

  async sourceIps(sender: SenderId): Promise<readonly SourceIpStat[]> {
    return this.sourceIpsSync(sender);
  }

  sourceIpsSync(sender: SenderId): readonly SourceIpStat[] {
    const slot = this.slotOf(sender, false);
    return slot < 0 ? [] : this.addresses.list(slot);
  }

  async top(metric: TopMetric, windowSeconds: number, now: EpochMs, limit: number): Promise<readonly TopEntry[]> {
    const nowSec = Math.floor(now / 1000);
    // For messages/recipients use the smallest configured window that covers the request.
    let w = this.layout.windows.findIndex((s) => s >= windowSeconds);
    if (w < 0) w = this.nWin - 1;
    const shape = this.rateShapes[w]!;
    const out: TopEntry[] = [];
    const one = [windowSeconds];
    for (const [sender, slot] of this.slots) {
      let value: number;
      if (metric === 'source-ips') value = this.addresses.figures(slot, nowSec, null, one, false).distinctIps[0]!;
      else if (metric === 'countries') value = this.addresses.figures(slot, nowSec, null, one, false).distinctCountries[0]!;
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
      if (this.lastSec[slot]! >= cutoff || this.isSuspended(slot)) continue;
      this.slots.delete(sender);
      this.clearSlot(slot);
      this.free.push(slot);
      evicted++;
    }
    return evicted;
  }

  private clearSlot(slot: number): void {
    this.cells.fill(0, slot * this.stride, (slot + 1) * this.stride);
    this.events.fill(0, slot * this.eventStride, (slot + 1) * this.eventStride);
    for (const name of ARRAY_NAMES) if (name !== 'cells' && name !== 'events') this[name][slot] = 0;
    this.addresses.clear(slot);
    this.addresses.flags[slot] = 0;
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
    for (const name of ARRAY_NAMES) arrays[name] = bytesOf(this[name], this.count * (name === 'cells' ? this.stride : name === 'events' ? this.eventStride : 1));
    return { version: 3, layout: this.layout, slots: [...this.slots.entries()], count: this.count, arrays, addresses: this.addresses.exportState(this.count) };
  }

  /**
   * Restores exported counters; returns false (and keeps the empty state) when the layout
   * or the snapshot format changed (suspensions are restored from the records either way).
   */
  importState(data: CounterSnapshotData): boolean {
    if (data.version !== 3 || JSON.stringify(data.layout) !== JSON.stringify(this.layout)) return false;
    if (data.count > this.capacity) this.grow(Math.max(data.count, this.capacity * 2));
    for (const name of ARRAY_NAMES) restoreBytes(this[name], data.arrays[name]);
    this.addresses.importState(data.addresses);
    this.count = data.count;
    const used = new Set<number>();
    for (const [sender, slot] of data.slots) {
      this.slots.set(sender, slot);
      used.add(slot);
    }
    for (let s = 0; s < data.count; s++) if (!used.has(s)) this.free.push(s);
    return true;
  }
}
