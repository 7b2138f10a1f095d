import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
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
import { sourcePrefix } from '../source-prefix.ts';
import { ringShape } from '../memory/ring-series.ts';
import { counterTtlFor, observeScript, peekScript, SUSPEND_SCRIPT, TIME_SCRIPT, topValueScript, type ScriptParams } from './lua.ts';
import { keySlot, SLOTS, tagForSlot } from './slots.ts';

// Counters of the distributed backend: Redis or Valkey, shared by every fumidai node.
// Each operation on the hot path (observe) is one EVALSHA, i.e. one round trip; the
// script is loaded lazily (NOSCRIPT -> EVAL once, which also caches it on the server).
// Key layout and the reasons for it: docs/distributed.md.

export interface RedisCounterStoreOptions {
  readonly layout: CounterLayout;
  /** Key prefix, without braces, e.g. "fumidai". */
  readonly prefix: string;
  /**
   * Redis Cluster: the activity index is kept per slot (each sender's entry in its own
   * slot, so the observe script stays single-slot) and multi-key reads fan out per key.
   */
  readonly cluster?: boolean;
  /** Exact distinct-IP counts below this many retained addresses; HyperLogLog from it on (8..256). */
  readonly hllThreshold?: number;
  /** How long the suspended flag lives without being re-asserted (resync refreshes it). */
  readonly suspendedTtlSeconds?: number;
}

const DAY = 86400;

class Script {
  readonly sha: string;
  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }
}

function isNoScript(e: unknown): boolean {
  return e instanceof Error && e.message.startsWith('NOSCRIPT');
}

export interface SenderKeys {
  readonly counters: string;
  readonly suspended: string;
  readonly ips: string;
  readonly ipStats: string;
  readonly countries: string;
}

/** Key names. A sender's keys share the hash tag {s:<sender>}: one Redis Cluster slot. */
export class RedisKeys {
  constructor(
    readonly prefix: string,
    readonly cluster = false,
  ) {
    if (/[{}]/.test(prefix)) throw new Error('redis key prefix must not contain { or }');
  }

  sender(sender: string): SenderKeys {
    const t = `${this.prefix}:{s:${sender}}:`;
    return { counters: `${t}c`, suspended: `${t}sus`, ips: `${t}ip`, ipStats: `${t}ipd`, countries: `${t}cc` };
  }

  /**
   * Senders active on a UTC day (ZSET sender -> last second). One key on a single Redis;
   * on a Cluster one key per slot, in the sender's slot (docs/distributed.md).
   */
  index(day: number, sender: string): string {
    return this.cluster ? this.indexOfSlot(day, keySlot(this.sender(sender).counters)) : `${this.prefix}:{i}:a:${day}`;
  }

  indexOfSlot(day: number, slot: number): string {
    return `${this.prefix}:{${tagForSlot(slot)}}:a:${day}`;
  }

  /** Every index key of a day. */
  indexKeys(day: number): string[] {
    if (!this.cluster) return [`${this.prefix}:{i}:a:${day}`];
    return Array.from({ length: SLOTS }, (_, slot) => this.indexOfSlot(day, slot));
  }

  /** Sender IDs seen with a campaign fingerprint (ZSET sender -> last second); own slot per fingerprint. */
  campaign(fingerprint: string): string {
    return `${this.prefix}:{c:${fingerprint}}:s`;
  }

  /** Every key of this store matches this pattern (for tests and cleanup). */
  pattern(): string {
    return `${this.prefix}:*`;
  }
}

export class RedisCounterStore implements CounterStore {
  readonly layout: CounterLayout;
  readonly keys: RedisKeys;
  private readonly redis: Redis | Cluster;
  private readonly cluster: boolean;
  private readonly observeLua: Script;
  private readonly peekLua: Script;
  private readonly topLua: Script;
  private readonly suspendLua = new Script(SUSPEND_SCRIPT);
  private readonly timeLua = new Script(TIME_SCRIPT);
  private readonly nWin: number;
  private readonly counterTtl: number;
  private readonly suspendedTtlMs: number;
  private sizeCache: { at: number; value: number } | null = null;
  /** Commands sent to Redis by this store (each is one round trip unless pipelined). */
  roundTrips = 0;

  constructor(redis: Redis | Cluster, opts: RedisCounterStoreOptions) {
    this.redis = redis;
    this.cluster = opts.cluster ?? false;
    this.layout = opts.layout;
    this.keys = new RedisKeys(opts.prefix, this.cluster);
    this.nWin = opts.layout.windows.length;
    this.counterTtl = counterTtlFor(opts.layout);
    const hll = opts.hllThreshold ?? 256;
    if (!(hll >= 8 && hll <= 256)) throw new Error('hllThreshold must be 8..256');
    const params: ScriptParams = { layout: opts.layout, counterTtl: this.counterTtl, indexTtl: this.counterTtl + DAY, hllThreshold: hll };
    this.observeLua = new Script(observeScript(params));
    this.peekLua = new Script(peekScript(params));
    this.topLua = new Script(topValueScript(params));
    this.suspendedTtlMs = (opts.suspendedTtlSeconds ?? 7 * DAY) * 1000;
  }

  /** Loads the scripts into the server's cache (SCRIPT LOAD); optional, saves the first EVAL. */
  async loadScripts(): Promise<void> {
    const targets = this.cluster ? (this.redis as Cluster).nodes('master') : [this.redis as Redis];
    for (const node of targets) {
      for (const s of [this.observeLua, this.peekLua, this.topLua, this.suspendLua, this.timeLua]) {
        this.roundTrips++;
        await node.script('LOAD', s.lua);
      }
    }
  }

  private async run(s: Script, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    this.roundTrips++;
    try {
      return await this.redis.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (e) {
      if (!isNoScript(e)) throw e;
      this.roundTrips++;
      return this.redis.eval(s.lua, keys.length, ...keys, ...args);
    }
  }

  async observe(req: ObserveRequest): Promise<SenderSnapshot> {
    const nowSec = Math.floor(req.now / 1000);
    const k = this.keys.sender(req.sender);
    const place = req.place ?? null;
    const lat = place !== null && Number.isFinite(place.lat) ? Math.round(place.lat * 100) : '';
    const lon = place !== null && Number.isFinite(place.lon) ? Math.round(place.lon * 100) : '';
    let limits = '';
    for (const l of req.limits) limits += `${limits === '' ? '' : ','}${l.messages},${l.recipients}`;
    const packed =
      `${nowSec}\n${req.stage === 'rcpt' ? 'r' : req.stage === 'message' ? 'm' : 'a'}\n${req.authOk === true ? 1 : 0}\n${req.messages}\n${req.recipients}\n` +
      `${req.ip ?? ''}\n${place === null ? 0 : 1}\n${place !== null && place.country.length === 2 ? place.country : ''}\n${lat}\n${lon}\n${limits}\n${req.ip === null ? '' : (sourcePrefix(req.ip) ?? req.ip)}\n${opensTransaction(req) ? 1 : 0}\n${req.sender}`;
    const r = (await this.run(this.observeLua, [k.counters, this.keys.index(Math.floor(nowSec / DAY), req.sender)], [packed])) as (number | string | null)[];
    const exW = Number(r[2]);
    const exceeded: Exceeded | null =
      exW > 0 ? { window: this.layout.windows[exW - 1]!, series: r[3] as 'messages' | 'recipients', count: Number(r[4]), limit: Number(r[5]) } : null;
    const previous: PreviousPlace | null =
      r[10] === '' || r[10] === null
        ? null
        : {
            ip: String(r[10]),
            place: { country: String(r[11]), lat: r[12] === '' ? NaN : Number(r[12]) / 100, lon: r[13] === '' ? NaN : Number(r[13]) / 100 },
            t: Number(r[14]) * 1000,
          };
    let i = 15;
    const windows: WindowCount[] = [];
    for (let w = 0; w < this.nWin; w++, i += 2) windows.push({ messages: Number(r[i]), recipients: Number(r[i + 1]) });
    const nD = this.layout.distinctWindows.length;
    const distinctIps = r.slice(i, i + nD).map(Number);
    const distinctCountries = r.slice(i + nD, i + 2 * nD).map(Number);
    const distinctPrefixes = r.slice(i + 2 * nD, i + 3 * nD).map(Number);
    const pf = Number(r[i + 3 * nD]);
    // Not annotated: older versions of SenderSnapshot lack the network fields.
    const snapshot = {
      suspended: r[0] === 1,
      admitted: r[1] === 1,
      exceeded,
      windows,
      breaches: Number(r[6]),
      authFailures: Number(r[7]),
      distinctIps,
      distinctCountries,
      distinctPrefixes,
      prefixFirstSeen: pf < 0 ? null : pf * 1000,
      previous,
      baselinePerHour: Number(r[9]),
      historySeconds: Number(r[8]),
    };
    return snapshot;
  }

  async peek(sender: SenderId, now: EpochMs): Promise<PeekResult> {
    const k = this.keys.sender(sender);
    const r = (await this.run(this.peekLua, [k.counters, k.suspended, k.ips, k.countries], [Math.floor(now / 1000)])) as number[];
    const windows: WindowCount[] = [];
    let i = 1;
    for (let w = 0; w < this.nWin; w++, i += 2) windows.push({ messages: r[i]!, recipients: r[i + 1]! });
    const nD = this.layout.distinctWindows.length;
    return { suspended: r[0] === 1, windows, distinctIps: r.slice(i, i + nD), distinctCountries: r.slice(i + nD, i + 2 * nD) };
  }

  async setSuspended(sender: SenderId, suspended: boolean): Promise<void> {
    await this.run(this.suspendLua, [this.keys.sender(sender).suspended], [suspended ? 'set' : 'clear', this.suspendedTtlMs, this.suspendedTtlMs]);
  }

  /** Redis server time, ms (taken before reading PostgreSQL for a resync). */
  async serverTime(): Promise<number> {
    return Number(await this.run(this.timeLua, [], []));
  }

  /**
   * Re-asserts open suspensions read from PostgreSQL at `readStartedAt` (Redis time):
   * refreshes their flags' expiry and restores flags lost with a Redis restart, but never
   * undoes a release made after the read. One pipelined batch per 1,000 senders.
   */
  async resyncSuspended(senders: readonly SenderId[], readStartedAt: number): Promise<number> {
    if (this.cluster) {
      // Each flag in its own slot: one call each, 500 at a time.
      let n = 0;
      for (let i = 0; i < senders.length; i += 500) {
        const r = await Promise.all(senders.slice(i, i + 500).map((s) => this.run(this.suspendLua, [this.keys.sender(s).suspended], ['resync', this.suspendedTtlMs, this.suspendedTtlMs, readStartedAt])));
        n += r.filter((v) => v === 1).length;
      }
      return n;
    }
    let set = 0;
    for (let i = 0; i < senders.length; i += 1000) {
      const p = this.redis.pipeline();
      for (const s of senders.slice(i, i + 1000)) p.evalsha(this.suspendLua.sha, 1, this.keys.sender(s).suspended, 'resync', this.suspendedTtlMs, this.suspendedTtlMs, readStartedAt);
      this.roundTrips++;
      let res = await p.exec();
      if (res?.some(([e]) => isNoScript(e))) {
        await this.redis.script('LOAD', this.suspendLua.lua);
        this.roundTrips += 2;
        const q = this.redis.pipeline();
        for (const s of senders.slice(i, i + 1000)) q.evalsha(this.suspendLua.sha, 1, this.keys.sender(s).suspended, 'resync', this.suspendedTtlMs, this.suspendedTtlMs, readStartedAt);
        res = await q.exec();
      }
      for (const [e, v] of res ?? []) {
        if (e) throw e;
        if (v === 1) set++;
      }
    }
    return set;
  }

  async sourceIps(sender: SenderId): Promise<readonly SourceIpStat[]> {
    const k = this.keys.sender(sender);
    this.roundTrips++;
    const res = await this.redis.multi().zrevrange(k.ips, 0, -1, 'WITHSCORES').hgetall(k.ipStats).exec();
    const z = (res?.[0]?.[1] ?? []) as string[];
    const stats = (res?.[1]?.[1] ?? {}) as Record<string, string>;
    const out: SourceIpStat[] = [];
    for (let i = 0; i < z.length; i += 2) {
      const ip = z[i]!;
      const [count, first, cc] = (stats[ip] ?? '0|0|||').split('|');
      out.push({ ip, country: cc ? cc : null, count: Number(count), firstSeen: Number(first) * 1000, lastSeen: Number(z[i + 1]) * 1000 });
    }
    return out;
  }

  async top(metric: TopMetric, windowSeconds: number, now: EpochMs, limit: number): Promise<readonly TopEntry[]> {
    const nowSec = Math.floor(now / 1000);
    let w = this.layout.windows.findIndex((s) => s >= windowSeconds);
    if (w < 0) w = this.nWin - 1;
    const rate = metric === 'messages' || metric === 'recipients';
    // Candidates: senders active in the span that can hold a non-zero value.
    const span = rate ? this.layout.windows[w]! + ringShape(this.layout.windows[w]!, this.layout.subBuckets).bucket : windowSeconds;
    // The index is refreshed at most once a minute per sender: look 60 s further back.
    const candidates = await this.activeSince(nowSec - span - 60, nowSec);
    const code = metric === 'messages' ? 'm' : metric === 'recipients' ? 'r' : metric === 'source-ips' ? 'i' : 'c';
    const arg = rate ? w + 1 : windowSeconds;
    const out: TopEntry[] = [];
    const list = [...candidates];
    for (let i = 0; i < list.length; i += 500) {
      const batch = list.slice(i, i + 500);
      const values = await this.pipelineScript(this.topLua, batch.map((s) => {
        const k = this.keys.sender(s);
        return [[k.counters, k.ips, k.countries], [nowSec, code, arg]];
      }));
      batch.forEach((s, j) => {
        const v = Number(values[j]);
        if (v > 0) out.push({ sender: s as SenderId, value: v });
      });
    }
    out.sort((a, b) => b.value - a.value || (a.sender < b.sender ? -1 : 1));
    return out.slice(0, limit);
  }

  private async pipelineScript(s: Script, calls: readonly [readonly string[], readonly (string | number)[]][]): Promise<unknown[]> {
    // A Cluster pipeline must stay on one node: there, plain concurrent calls.
    if (this.cluster) return Promise.all(calls.map(([keys, args]) => this.run(s, keys, args)));
    const exec = async (): Promise<[Error | null, unknown][]> => {
      const p = this.redis.pipeline();
      for (const [keys, args] of calls) p.evalsha(s.sha, keys.length, ...keys, ...args);
      this.roundTrips++;
      return (await p.exec()) ?? [];
    };
    let res = await exec();
    if (res.some(([e]) => isNoScript(e))) {
      this.roundTrips++;
      await this.redis.script('LOAD', s.lua);
      res = await exec();
    }
    return res.map(([e, v]) => {
      if (e) throw e;
      return v;
    });
  }

  /** Senders with any event since `sinceSec` (from the day index). */
  private async activeSince(sinceSec: number, nowSec: number): Promise<Set<string>> {
    const keys: string[] = [];
    for (let d = Math.floor(sinceSec / DAY); d <= Math.floor(nowSec / DAY); d++) keys.push(...this.keys.indexKeys(d));
    const out = new Set<string>();
    if (this.cluster) {
      // 16,384 index keys per day: read 1,000 at a time (support path only).
      for (let i = 0; i < keys.length; i += 1000) {
        this.roundTrips++;
        const lists = await Promise.all(keys.slice(i, i + 1000).map((k) => (this.redis as Cluster).zrangebyscore(k, `(${sinceSec}`, '+inf')));
        for (const l of lists) for (const s of l) out.add(s);
      }
      return out;
    }
    const p = this.redis.pipeline();
    for (const k of keys) p.zrangebyscore(k, `(${sinceSec}`, '+inf');
    this.roundTrips++;
    const res = (await p.exec()) ?? [];
    for (const [e, v] of res) {
      if (e) throw e;
      for (const s of v as string[]) out.add(s);
    }
    return out;
  }

  /** Senders active within the counters' lifetime (cached for 30 s: it reads the whole index). */
  async size(): Promise<number> {
    const now = Date.now();
    if (this.sizeCache !== null && now - this.sizeCache.at < (this.cluster ? 300_000 : 30_000)) return this.sizeCache.value;
    const nowSec = Math.floor(now / 1000);
    // On a Cluster: the senders active in the last day (reading 8 days of 16,384 keys is too much for a gauge).
    const value = (await this.activeSince(nowSec - (this.cluster ? DAY : this.counterTtl), nowSec)).size;
    this.sizeCache = { at: now, value };
    return value;
  }

  /**
   * Campaign fingerprints (countermeasure 2): per fingerprint ZADD, ZREMRANGEBYSCORE below
   * the window, ZCARD, EXPIRE — one pipelined round trip for all fingerprints of a message
   * (each fingerprint is its own key and slot; no cross-slot script is needed).
   */
  async observeCampaign(req: CampaignRequest): Promise<CampaignSnapshot> {
    if (req.fingerprints.length === 0) return { senders: [] };
    const now = Math.floor(req.now / 1000);
    const add = (p: ReturnType<Redis['pipeline']>, fp: string): void => {
      const k = this.keys.campaign(fp);
      p.zadd(k, now, req.sender).zremrangebyscore(k, '-inf', now - req.windowSeconds).zcard(k).expire(k, req.windowSeconds + 1);
    };
    if (this.cluster) {
      // Each fingerprint is its own slot: one pipeline per fingerprint, sent together.
      this.roundTrips++;
      const all = await Promise.all(
        req.fingerprints.map(async (fp) => {
          const p = this.redis.pipeline();
          add(p, fp);
          const res = (await p.exec()) ?? [];
          for (const [e] of res) if (e) throw e;
          return Number(res[2]![1]);
        }),
      );
      return { senders: all };
    }
    const p = this.redis.pipeline();
    for (const fp of req.fingerprints) add(p, fp);
    this.roundTrips++;
    const res = (await p.exec()) ?? [];
    for (const [e] of res) if (e) throw e;
    return { senders: req.fingerprints.map((_, i) => Number(res[i * 4 + 2]![1])) };
  }

  async close(): Promise<void> {}
}
