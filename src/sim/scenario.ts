import { countriesFor, hostIn, hostInPrefix, pickBlock, prefix24In, type IpRange } from './ip-ranges.ts';
import * as P from './params.ts';
import { hash32, Rng } from './prng.ts';

// The scenario generator behind `fumidai simulate`: a provider's users sending mail for
// some days, with compromised accounts among them, as replay JSON Lines (docs/replay.md
// describes the model and its parameters). Deterministic from the seed: every random
// draw comes from an Rng stream named after what it is for.
//
// Memory stays bounded for large scenarios: users are small objects, attack events are
// generated up front (they are few), and legitimate traffic is generated one day at a
// time into per-day buckets; each day's bucket is sorted and written before the next.
//
// Warm-up: with `warmupDays` W, days -W .. -1 come before the measured days 0 .. days-1.
// They are generated like any other day from streams of their own ('legit-warmup'), so the
// population, the attacks (planned on the measured days only) and the draws of the measured
// days are those of the scenario without warm-up; only the users' network state (home
// address, phone pool) has moved on through the warm-up, as it would have in reality.

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const MINUTE = 60_000;

export type AttackKind = keyof P.AttackRates;

export interface SimOptions {
  readonly seed: number;
  readonly users: number;
  readonly days: number;
  /** Epoch ms of the first day's midnight in Japan. */
  readonly start: number;
  /** Multiplies every attack rate. */
  readonly attackScale: number;
  /** Multiplies single attack rates, e.g. { blast: 2, slowProxy: 0 }. */
  readonly mix: Readonly<Partial<Record<AttackKind, number>>>;
  /**
   * Days of ordinary traffic before `start` (legitimate users only, no attacks): the history
   * a provider's server has when the measured days begin. The file then starts `warmupDays`
   * earlier and has a `scoring` line at `start` (docs/replay.md). 0 (default): no warm-up,
   * and the file is exactly what it was before warm-up existed.
   */
  readonly warmupDays?: number;
}

export const DEFAULT_START = Date.parse('2026-11-02T00:00:00+09:00'); // a Monday

type Label = 'legit' | 'abuse';

interface EventBase {
  readonly t: number;
  readonly seq: number;
  readonly user: string;
  readonly ip: string;
  readonly label: Label;
  readonly group: string | null;
}
interface SimAuth extends EventBase {
  readonly type: 'auth';
  readonly ok: boolean;
}
interface SimMessage extends EventBase {
  readonly type: 'message';
  readonly mailFrom: string;
  readonly headerFrom: string;
  readonly rcpt: readonly string[];
  readonly size: number;
}
type SimEvent = SimAuth | SimMessage;

interface Trip {
  readonly firstDay: number;
  readonly lastDay: number;
  readonly country: string;
  /** Destination's offset from UTC in hours. */
  readonly tz: number;
  readonly hotelNights: number;
  readonly hotels: readonly string[];
}

interface Bulk {
  readonly style: 'bcc' | 'merge';
  readonly override: boolean;
  readonly weekday: number;
  readonly listSize: number;
}

interface SimUser {
  readonly index: number;
  readonly id: string;
  readonly address: string;
  readonly cls: P.VolumeClass;
  readonly rate: number;
  readonly office: boolean;
  readonly mobileShare: number;
  readonly carrier: IpRange;
  readonly homeBlock: IpRange;
  readonly officeIp: string | null;
  readonly thirdParty: string | null;
  readonly contacts: number;
  readonly staleWeekDay: number | null;
  group: string;
  allowAbroad: boolean;
  readonly poolConsent: boolean;
  trip: Trip | null;
  bulk: Bulk | null;
  // mutable network state, advanced day by day
  homeIp: string;
  pool: number[];
  mobileIp: string;
  lastMobile: number;
}

/** Bulk senders' limits as an operator would set them for a weekly newsletter. */
export const BULK_LIMITS = {
  messagesPerMinute: 60,
  recipientsPerMinute: 1000,
  messagesPerHour: 1000,
  recipientsPerHour: 2000,
  messagesPerDay: 2000,
  recipientsPerDay: 4000,
} as const;

const DESTINATIONS: readonly (readonly [string, number, number])[] = [
  // country, UTC offset (h), weight
  ['US', -10, 20], // Hawaii
  ['KR', 9, 15],
  ['TW', 8, 15],
  ['TH', 7, 10],
  ['SG', 8, 10],
  ['HK', 8, 5],
  ['FR', 1, 8],
  ['DE', 1, 5],
  ['GB', 0, 5],
  ['IT', 1, 7],
];

const SPOOF_FROM = ['security@amaz0n-jp.com', 'info@smbc-card-support.net', 'no-reply@apple-id-verify.com', 'support@rakuten-secure.co', 'admin@mufg-alert.com'];
const SPAM_DOMAINS = ['gmail.com', 'yahoo.co.jp', 'hotmail.com', 'docomo.ne.jp', 'ezweb.ne.jp', 'outlook.com', 'yahoo.com', 'icloud.com', 'aol.com', 'qq.com', 'naver.com', 'gmx.de'];

function userId(i: number): string {
  return `u${String(i + 1).padStart(6, '0')}`;
}

/** Milliseconds of a JST calendar day's midnight, and its weekday. */
function weekday(start: number, day: number): number {
  return new Date(start + day * DAY + P.JST_OFFSET_MS).getUTCDay();
}

export class Scenario {
  readonly opts: SimOptions;
  readonly users: SimUser[] = [];
  private seq = 0;
  private readonly buckets: SimEvent[][];
  /** Days before `start` (warm-up). */
  readonly warmupDays: number;
  /** The first warm-up day's midnight (= `start` without warm-up). */
  private readonly begin: number;
  private readonly end: number;
  private messageNo = 0;
  readonly counts = { lines: 0, messages: 0, auths: 0, abuseMessages: 0 };

  constructor(opts: SimOptions) {
    if (!(opts.users >= 1) || !(opts.days >= 1)) throw new Error('users and days must be at least 1');
    const warmup = opts.warmupDays ?? 0;
    if (!Number.isSafeInteger(warmup) || warmup < 0) throw new Error('warmupDays must be a whole number of at least 0');
    this.opts = opts;
    this.warmupDays = warmup;
    this.begin = opts.start - warmup * DAY;
    this.end = opts.start + opts.days * DAY;
    this.buckets = Array.from({ length: warmup + opts.days }, () => []);
    this.buildPopulation();
    this.planSpecialUsers();
    this.planAttacks();
  }

  // ---------------------------------------------------------------- population

  private buildPopulation(): void {
    const { seed, users } = this.opts;
    const shares = P.VOLUME_CLASSES.map((c) => c.share);
    for (let i = 0; i < users; i++) {
      const r = new Rng(seed, 'user', i);
      const cls = P.VOLUME_CLASSES[r.weighted(shares)]!;
      const rate = cls.median === 0 ? 0 : Math.min(200, r.lognormal(cls.median, cls.sigma));
      const office = r.chance(cls.office);
      const mobile = r.chance(P.MOBILE_USERS);
      const mobileShare = !mobile ? 0 : r.chance(P.MOBILE_ONLY) ? 1 : r.uniform(0.15, 0.85);
      const carrier = pickBlock(r, 'jp-mobile');
      const homeBlock = pickBlock(r, 'jp-fixed');
      const id = userId(i);
      const pool = Array.from({ length: P.CGNAT_POOL_PREFIXES }, () => prefix24In(r, carrier));
      const u: SimUser = {
        index: i,
        id,
        address: `${id}@${P.PROVIDER_DOMAIN}`,
        cls,
        rate,
        office,
        mobileShare,
        carrier,
        homeBlock,
        officeIp: office ? hostIn(r, pickBlock(r, 'jp-fixed')) : null,
        thirdParty: r.chance(P.THIRD_PARTY_USERS) ? `${id.replace('u', 'info')}@shop${hash32(seed, i) % 9000}.co.jp` : null,
        contacts: r.int(5, cls.name === 'business' || cls.name === 'heavy' ? 400 : 60),
        staleWeekDay: r.chance(P.STALE_PASSWORD_PER_USER_WEEK) ? r.int(0, 6) : null,
        group: cls.name,
        allowAbroad: r.chance(0.03),
        poolConsent: r.chance(0.3),
        trip: null,
        bulk: null,
        homeIp: hostIn(r, homeBlock),
        pool,
        mobileIp: hostInPrefix(r, pool[0]!),
        lastMobile: -Infinity,
      };
      this.users.push(u);
    }
  }

  private specialCount(per10k: number, r: Rng): number {
    const expected = (per10k * this.opts.users) / 10_000;
    const n = Math.floor(expected) + (r.chance(expected - Math.floor(expected)) ? 1 : 0);
    return this.opts.users >= 1000 ? Math.max(1, n) : n;
  }

  /** Travellers and bulk senders, drawn from active users. */
  private planSpecialUsers(): void {
    const r = new Rng(this.opts.seed, 'special');
    const candidates = r.shuffle(this.users.filter((u) => u.rate > 0));
    let next = 0;
    const nBulk = this.specialCount(P.BULK_SENDERS_PER_10K, r);
    for (let k = 0; k < nBulk && next < candidates.length; k++) {
      const u = candidates[next++]!;
      const override = k % 2 === 0;
      u.bulk = { style: Math.floor(k / 2) % 2 === 0 ? 'bcc' : 'merge', override, weekday: r.int(1, 5), listSize: r.int(150, 800) };
      u.group = override ? 'bulk-override' : 'bulk-no-override';
    }
    const nTravel = this.specialCount(P.TRAVELLERS_PER_10K, r);
    for (let k = 0; k < nTravel && next < candidates.length; k++) {
      const u = candidates[next++]!;
      const [country, tz] = DESTINATIONS[r.weighted(DESTINATIONS.map((d) => d[2]))]!;
      const length = r.int(4, 8);
      const firstDay = r.int(0, Math.max(0, this.opts.days - 3));
      const hotelNights = r.int(2, 3);
      const hotels = Array.from({ length: Math.ceil(length / hotelNights) + 1 }, () => hostIn(r, pickBlock(r, 'residential', country)));
      u.trip = { firstDay, lastDay: firstDay + length - 1, country, tz, hotelNights, hotels };
      u.allowAbroad = r.chance(0.6);
      u.group = 'traveller';
    }
  }

  // ---------------------------------------------------------------- events

  private push(e: SimEvent): void {
    if (e.t < this.begin || e.t >= this.end) return;
    this.buckets[Math.floor((e.t - this.begin) / DAY)]!.push(e);
  }

  private auth(t: number, user: SimUser, ip: string, ok: boolean, label: Label, group: string | null = null): void {
    this.push({ type: 'auth', t: Math.round(t), seq: this.seq++, user: user.id, ip, ok, label, group });
  }

  private message(t: number, user: SimUser, ip: string, rcpt: readonly string[], label: Label, extra: { from?: string; headerFrom?: string; size: number; group?: string }): void {
    this.push({
      type: 'message',
      t: Math.round(t),
      seq: this.seq++,
      user: user.id,
      ip,
      mailFrom: extra.from ?? user.address,
      headerFrom: extra.headerFrom ?? extra.from ?? user.address,
      rcpt,
      size: extra.size,
      label,
      group: extra.group ?? null,
    });
  }

  // ---------------------------------------------------------------- legitimate traffic

  private contact(u: SimUser, j: number): string {
    const h = hash32(this.opts.seed, u.index, j);
    const d = P.RCPT_DOMAINS[hash32(h, 7) % P.RCPT_DOMAINS.length]!;
    // Weighted domain choice, stable per contact.
    let x = (hash32(h, 11) % 10_000) / 10_000;
    let total = 0;
    for (const [, w] of P.RCPT_DOMAINS) total += w;
    let domain = d[0];
    for (const [name, w] of P.RCPT_DOMAINS) {
      x -= w / total;
      if (x < 0) {
        domain = name;
        break;
      }
    }
    if (domain === 'biz') domain = `corp${hash32(h, 13) % 5000}.co.jp`;
    if (domain === P.PROVIDER_DOMAIN) return `u${String((hash32(h, 17) % 99_999) + 1).padStart(6, '0')}@${domain}`;
    return `c${(h % 2_000_000).toString(36)}@${domain}`;
  }

  private recipients(u: SimUser, r: Rng): string[] {
    const table = u.cls.name === 'business' ? P.RCPTS_BUSINESS : P.RCPTS_PERSONAL;
    const [, lo, hi] = table[r.weighted(table.map((x) => x[0]))]!;
    const n = r.int(lo, hi);
    const out = new Set<string>();
    while (out.size < n) {
      if (r.chance(0.15)) out.add(`n${r.next().toString(36)}@${P.RCPT_DOMAINS[r.int(0, 9)]![0]}`);
      else out.add(this.contact(u, Math.floor(u.contacts * r.float() * r.float())));
    }
    return [...out];
  }

  private size(r: Rng): number {
    const body = Math.round(r.lognormal(P.SIZE_MEDIAN, 0.9));
    return r.chance(P.ATTACHMENT_SHARE) ? Math.min(20_000_000, body + Math.round(r.lognormal(600_000, 1.0))) : body;
  }

  /** A phone's public address for a new connection at t (CGNAT model, docs/replay.md). */
  private mobileAddress(u: SimUser, t: number, r: Rng): string {
    const gapMinutes = (t - u.lastMobile) / MINUTE;
    const keep = P.CGNAT_KEEP.find(([upTo]) => gapMinutes <= upTo)![1];
    if (!r.chance(keep)) u.mobileIp = hostInPrefix(r, r.pick(u.pool));
    u.lastMobile = t;
    return u.mobileIp;
  }

  /** Generates one JST day of a user's own mail into the buckets (day < 0: warm-up). */
  private legitDay(u: SimUser, day: number): void {
    // Warm-up days draw from streams of their own (a negative number would share a
    // stream with a measured day: Rng keys are 32-bit).
    const r = day < 0 ? new Rng(this.opts.seed, 'legit-warmup', u.index, -day) : new Rng(this.opts.seed, 'legit', u.index, day);
    // Network changes overnight.
    if (r.chance(P.HOME_IP_CHANGE_PER_DAY)) u.homeIp = hostIn(r, u.homeBlock);
    if (r.chance(P.CGNAT_POOL_MOVE_PER_DAY)) u.pool = u.pool.map(() => prefix24In(r, u.carrier));

    const dayStart = this.opts.start + day * DAY;
    const dow = weekday(this.opts.start, day);
    const trip = u.trip !== null && day >= u.trip.firstDay && day <= u.trip.lastDay ? u.trip : null;
    const workday = dow >= 1 && dow <= 5 && trip === null;
    const officeDay = u.office && workday;
    const dowFactor = (u.office ? P.DOW_OFFICE : P.DOW_PERSONAL)[dow]!;
    const noise = r.lognormal(Math.exp(-(P.DAY_NOISE_SIGMA ** 2) / 2), P.DAY_NOISE_SIGMA);
    let remaining = r.poisson(u.rate * dowFactor * noise);

    if (u.bulk !== null && workday && dow === u.bulk.weekday) this.newsletter(u, dayStart, r);

    const localShift = trip === null ? 0 : trip.tz - 9;
    const hourWeights = Array.from({ length: 24 }, (_, h) => {
      const local = (((h + localShift) % 24) + 24) % 24;
      return (officeDay ? P.HOURS_OFFICE_WEEKDAY : dow === 0 || dow === 6 ? P.HOURS_PERSONAL_WEEKEND : P.HOURS_PERSONAL_WEEKDAY)[local]!;
    });
    let typoPending = r.chance(P.TYPO_PER_USER_DAY);
    let stalePending = u.staleWeekDay !== null && ((day % 7) + 7) % 7 === u.staleWeekDay && remaining > 0;

    while (remaining > 0) {
      const k = Math.min(remaining, r.geometric(u.cls.perSession));
      remaining -= k;
      const hour = r.weighted(hourWeights);
      let t = dayStart + hour * HOUR + r.float() * HOUR;
      // Where this sitting sends from.
      let device: 'home' | 'office' | 'mobile' | 'hotel';
      if (trip !== null) device = r.chance(0.6) ? 'hotel' : 'mobile';
      else if (officeDay && hour >= 9 && hour < 18 && r.chance(P.OFFICE_HOURS_AT_WORK)) device = 'office';
      else if (r.chance(u.mobileShare)) {
        const athome = u.mobileShare < 1 && (hour >= 19 || hour < 8) && r.chance(P.PHONE_ON_HOME_WIFI);
        device = athome ? 'home' : 'mobile';
      } else device = 'home';
      const fixedIp = device === 'home' ? u.homeIp : device === 'office' ? u.officeIp! : device === 'hotel' ? trip!.hotels[Math.floor((day - trip!.firstDay) / trip!.hotelNights)]! : null;

      const firstIp = fixedIp ?? this.mobileAddress(u, t, r);
      if (stalePending) {
        // A mail program still has the old password: it retries the queued message every
        // few minutes until the user types the new one.
        stalePending = false;
        const failures = r.int(3, 12);
        for (let f = 0; f < failures; f++) {
          this.auth(t, u, firstIp, false, 'legit');
          t += r.uniform(4, 15) * MINUTE;
        }
      } else if (typoPending) {
        typoPending = false;
        const failures = r.int(1, 3);
        for (let f = 0; f < failures; f++) {
          this.auth(t, u, firstIp, false, 'legit');
          t += r.uniform(8, 40) * 1000;
        }
      }
      if (fixedIp !== null) this.auth(t, u, fixedIp, true, 'legit');
      for (let m = 0; m < k; m++) {
        if (m > 0) t += 10_000 + r.exp(P.SESSION_GAP_MEAN_S * 1000);
        let ip = fixedIp;
        if (ip === null) {
          // Phones open one connection per message.
          ip = m === 0 ? firstIp : this.mobileAddress(u, t, r);
          this.auth(t, u, ip, true, 'legit');
          t += 1000;
        } else {
          t += 200;
        }
        const from = u.thirdParty !== null && r.chance(0.5) ? u.thirdParty : undefined;
        this.message(t, u, ip, this.recipients(u, r), 'legit', { ...(from ? { from } : {}), size: this.size(r) });
      }
    }
  }

  /** A bulk sender's weekly newsletter, 10:00-11:30 JST from the office. */
  private newsletter(u: SimUser, dayStart: number, r: Rng): void {
    const b = u.bulk!;
    const ip = u.officeIp ?? u.homeIp;
    let t = dayStart + 10 * HOUR + r.float() * 90 * MINUTE;
    const list = Array.from({ length: b.listSize }, (_, j) => this.contact(u, 10_000 + j));
    this.auth(t, u, ip, true, 'legit');
    t += 500;
    if (b.style === 'bcc') {
      this.message(t, u, ip, list, 'legit', { size: 40_000 + r.int(0, 200_000) });
      return;
    }
    const size = 30_000 + r.int(0, 100_000);
    for (const rcpt of list) {
      this.message(t, u, ip, [rcpt], 'legit', { size });
      t += r.uniform(1200, 2500);
    }
  }

  // ---------------------------------------------------------------- attacks

  private attackCount(kind: AttackKind, r: Rng): number {
    const o = this.opts;
    const perProvider = kind === 'stuffing' ? 10_000 : o.users;
    const expected = (P.ATTACKS_PER_10K_WEEK[kind] * perProvider * o.days * o.attackScale * (o.mix[kind] ?? 1)) / (10_000 * 7);
    return Math.floor(expected) + (r.chance(expected - Math.floor(expected)) ? 1 : 0);
  }

  private planAttacks(): void {
    const o = this.opts;
    const r = new Rng(o.seed, 'attacks');
    // Which accounts get compromised: any ordinary user, dormant and light ones more
    // often (their owners notice least). Weighted random order (Efraimidis–Spirakis).
    const weight: Record<string, number> = { dormant: 3, light: 1.5, regular: 1, heavy: 0.5, business: 0.5 };
    const order = this.users
      .filter((u) => u.bulk === null && u.trip === null)
      .map((u) => ({ u, key: -Math.log(1 - r.float()) / (weight[u.cls.name] ?? 1) }))
      .sort((a, b) => a.key - b.key || a.u.index - b.u.index)
      .map((x) => x.u);
    let next = 0;
    const used = new Set<SimUser>();
    const take = (): SimUser | null => {
      const u = order[next++] ?? null;
      if (u !== null) used.add(u);
      return u;
    };
    const when = (): number => o.start + 2 * HOUR + r.float() * Math.max(HOUR, o.days * DAY - 8 * HOUR);

    const kinds: Exclude<AttackKind, 'stuffing'>[] = ['blast', 'slowBotnet', 'slowProxy', 'single', 'brute'];
    for (const kind of kinds) {
      const n = this.attackCount(kind, r);
      for (let k = 0; k < n; k++) {
        const u = take();
        if (u === null) return;
        const ar = new Rng(o.seed, 'attack', kind, k);
        this.runAttack(kind, u, when(), ar);
      }
    }
    const campaigns = this.attackCount('stuffing', r);
    for (let k = 0; k < campaigns; k++) this.stuffing(k, when(), used);
  }

  private runAttack(kind: Exclude<AttackKind, 'stuffing'>, u: SimUser, start: number, r: Rng): void {
    switch (kind) {
      case 'blast':
        return this.blast(u, start, r, 'blast');
      case 'slowBotnet':
        return this.slow(u, start, r, 'slow-botnet');
      case 'slowProxy':
        return this.slowProxy(u, start, r);
      case 'single':
        return this.single(u, start, r);
      case 'brute':
        return this.brute(u, start, r);
    }
  }

  private spamRcpts(r: Rng, lo: number, hi: number): string[] {
    const n = r.int(lo, hi);
    return Array.from({ length: n }, () => `${r.next().toString(36)}${r.int(0, 99)}@${r.pick(SPAM_DOMAINS)}`);
  }

  private spam(t: number, u: SimUser, ip: string, r: Rng, group: string, rcpt: readonly string[]): void {
    const headerFrom = r.chance(0.5) ? r.pick(SPOOF_FROM) : u.address;
    this.message(t, u, ip, rcpt, 'abuse', { headerFrom, size: r.int(2500, 15_000), group });
  }

  /** Bot addresses from many countries (home routers and IoT: residential blocks; a few in Japan). */
  private botnet(r: Rng, size: number, countries: number): string[] {
    const pool = r.shuffle(countriesFor('residential')).slice(0, countries);
    return Array.from({ length: size }, () => (r.chance(0.05) ? hostIn(r, pickBlock(r, 'jp-fixed')) : hostIn(r, pickBlock(r, 'residential', r.pick(pool)))));
  }

  /** (a) High volume from many bots in many countries, as fast as the bots can. */
  private blast(u: SimUser, start: number, r: Rng, group: string): void {
    const bots = this.botnet(r, r.int(60, 400), r.int(10, 30));
    const total = r.int(300, 2000);
    const perMinute = r.uniform(5, 30);
    let t = start;
    let sent = 0;
    while (sent < total) {
      const ip = r.pick(bots);
      this.auth(t, u, ip, true, 'abuse', group);
      const k = r.int(1, 5);
      for (let m = 0; m < k && sent < total; m++, sent++) {
        t += r.uniform(1000, 8000);
        this.spam(t, u, ip, r, group, this.spamRcpts(r, 10, 50));
      }
      t += r.exp((k / perMinute) * MINUTE);
    }
  }

  /** (b) Slow: a few messages an hour (or a day), each from another bot, for days. */
  private slow(u: SimUser, start: number, r: Rng, group: string): void {
    const bots = this.botnet(r, 2000, r.int(10, 40));
    const meanGap = Math.exp(r.uniform(Math.log(15), Math.log(240))) * MINUTE;
    const until = start + r.uniform(1, 4) * DAY;
    const daytime = r.chance(0.5);
    let t = start;
    while (t < until) {
      const jstHour = new Date(t + P.JST_OFFSET_MS).getUTCHours();
      if (!daytime || (jstHour >= 8 && jstHour < 22)) {
        const ip = r.pick(bots);
        this.auth(t, u, ip, true, 'abuse', group);
        this.spam(t + 1500, u, ip, r, group, this.spamRcpts(r, 10, 40));
      }
      t += Math.max(MINUTE, r.exp(meanGap));
    }
  }

  /** (b) Slow through one to three proxies, half of the time in a Japanese data centre. */
  private slowProxy(u: SimUser, start: number, r: Rng): void {
    const group = 'slow-proxy';
    const inJapan = r.chance(0.5);
    const proxies = Array.from({ length: r.int(1, 3) }, () => hostIn(r, inJapan ? pickBlock(r, 'jp-hosting') : r.chance(0.5) ? pickBlock(r, 'hosting') : pickBlock(r, 'residential')));
    const meanGap = Math.exp(r.uniform(Math.log(15), Math.log(180))) * MINUTE;
    const until = start + r.uniform(2, 5) * DAY;
    let t = start;
    while (t < until) {
      const ip = r.pick(proxies);
      this.auth(t, u, ip, true, 'abuse', group);
      this.spam(t + 1500, u, ip, r, group, this.spamRcpts(r, 10, 40));
      t += Math.max(MINUTE, r.exp(meanGap));
    }
  }

  /** (d) One address (a rented server) at a high rate. */
  private single(u: SimUser, start: number, r: Rng): void {
    const group = 'single-ip';
    const ip = hostIn(r, r.chance(0.4) ? pickBlock(r, 'jp-hosting') : r.chance(0.6) ? pickBlock(r, 'hosting') : pickBlock(r, 'residential'));
    const total = r.int(500, 3000);
    let t = start;
    for (let m = 0; m < total; m++) {
      if (m % 10 === 0) this.auth(t, u, ip, true, 'abuse', group);
      t += r.uniform(1000, 3000);
      this.spam(t, u, ip, r, group, this.spamRcpts(r, 1, 10));
    }
  }

  /** Password guessing on one account from a few addresses, then sending from them. */
  private brute(u: SimUser, start: number, r: Rng): void {
    const group = 'brute-force';
    const ips = this.botnet(r, r.int(1, 3), 3);
    let t = start;
    const failures = r.int(30, 200);
    for (let f = 0; f < failures; f++) {
      this.auth(t, u, r.pick(ips), false, 'abuse', group);
      t += r.uniform(5000, 40_000);
    }
    const ip = r.pick(ips);
    this.auth(t, u, ip, true, 'abuse', group);
    const total = r.int(300, 1500);
    for (let m = 0; m < total; m++) {
      t += r.uniform(2000, 6000);
      const from = r.pick(ips);
      if (m % 5 === 0) this.auth(t, u, from, true, 'abuse', group);
      this.spam(t + 500, u, from, r, group, this.spamRcpts(r, 5, 30));
    }
  }

  /**
   * (c) Credential stuffing: a list of leaked logins tried once or twice each from a
   * botnet over several hours; the few that work are used to send later.
   */
  private stuffing(k: number, start: number, used: Set<SimUser>): void {
    const r = new Rng(this.opts.seed, 'stuffing', k);
    const group = 'stuffing';
    const bots = this.botnet(r, r.int(200, 2000), r.int(15, 40));
    const span = r.uniform(6, 24) * HOUR;
    const targets = Math.round(this.users.length * P.STUFFING_TARGET_SHARE);
    const tried = r.shuffle(this.users.filter((u) => u.bulk === null && u.trip === null)).slice(0, targets);
    const hits: { u: SimUser; t: number }[] = [];
    for (const u of tried) {
      const t = start + r.float() * span;
      // The leaked password still works for a few (reused passwords); an account another
      // attack already owns is counted as a miss to keep the accounts apart.
      if (r.chance(P.STUFFING_SUCCESS) && !used.has(u)) {
        used.add(u);
        this.auth(t, u, r.pick(bots), true, 'abuse', group);
        hits.push({ u, t });
      } else {
        const n = r.int(1, 2);
        for (let a = 0; a < n; a++) this.auth(t + a * r.uniform(1, 30) * MINUTE, u, r.pick(bots), false, 'abuse', group);
      }
    }
    for (const { u, t } of hits) {
      const ar = new Rng(this.opts.seed, 'stuffing-use', k, u.index);
      if (!ar.chance(P.STUFFING_USED)) continue;
      const later = t + ar.uniform(2, 48) * HOUR;
      if (ar.chance(0.7)) this.slow(u, later, ar, 'slow-botnet');
      else this.blast(u, later, ar, 'blast');
    }
  }

  // ---------------------------------------------------------------- output

  /** The user lines, all at the scenario's start (the warm-up's start, when there is one). */
  *userLines(): Generator<string> {
    const t = new Date(this.begin).toISOString();
    for (const u of this.users) {
      this.counts.lines++;
      yield JSON.stringify({
        type: 'user',
        t,
        user: u.id,
        addresses: [u.address],
        allowAbroad: u.allowAbroad,
        poolConsent: u.poolConsent,
        ...(u.bulk?.override ? { limits: BULK_LIMITS } : {}),
        group: u.group,
      });
    }
  }

  /**
   * One day's lines, in time order: call for day -warmupDays, ..., -1 (warm-up), then
   * 0, 1, ..., days-1 in turn. With a warm-up, day 0 starts with the `scoring` line that
   * tells the replay where the measured period begins.
   */
  dayLines(day: number): string[] {
    if (!Number.isInteger(day) || day < -this.warmupDays || day >= this.opts.days) throw new Error(`day ${day} is outside the scenario (${-this.warmupDays} .. ${this.opts.days - 1})`);
    for (const u of this.users) this.legitDay(u, day);
    const index = day + this.warmupDays;
    const bucket = this.buckets[index]!;
    this.buckets[index] = [];
    bucket.sort((a, b) => a.t - b.t || a.seq - b.seq);
    const scoring = day === 0 && this.warmupDays > 0;
    const out: string[] = new Array(bucket.length + (scoring ? 1 : 0));
    let o = 0;
    if (scoring) {
      this.counts.lines++;
      out[o++] = JSON.stringify({ type: 'scoring', t: new Date(this.opts.start).toISOString(), warmupDays: this.warmupDays });
    }
    for (let i = 0; i < bucket.length; i++) out[o++] = this.serialise(bucket[i]!);
    return out;
  }

  private serialise(e: SimEvent): string {
    this.counts.lines++;
    const t = new Date(e.t).toISOString();
    if (e.type === 'auth') {
      this.counts.auths++;
      return JSON.stringify({ type: 'auth', t, user: e.user, ip: e.ip, ok: e.ok, protocol: 'smtp', label: e.label, ...(e.group ? { group: e.group } : {}) });
    }
    this.counts.messages++;
    if (e.label === 'abuse') this.counts.abuseMessages++;
    return JSON.stringify({
      type: 'message',
      t,
      id: `m${++this.messageNo}`,
      user: e.user,
      ip: e.ip,
      mailFrom: e.mailFrom,
      headerFrom: e.headerFrom,
      rcpt: e.rcpt,
      size: e.size,
      label: e.label,
      ...(e.group ? { group: e.group } : {}),
    });
  }
}
