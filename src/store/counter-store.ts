import type { EpochMs, SenderId } from '../engine/types.ts';

// The counter side of the state: everything the hot path reads and writes.
// Each call is one atomic operation, so that it maps to one Redis round trip
// (a Lua script) as well as to one in-memory update.

/** Limits for one configured window, in the order of `CounterLayout.windows`. */
export interface WindowLimit {
  readonly messages: number;
  readonly recipients: number;
}

/** Fixed at start from the config: which windows exist and how finely they slide. */
export interface CounterLayout {
  /** Rate-limit windows, in seconds, e.g. [60, 3600, 86400]. */
  readonly windows: readonly number[];
  /** Each window slides in this many steps (see docs/counting.md). */
  readonly subBuckets: number;
  /** Window over which limit breaches (refused attempts) are counted. */
  readonly breachWindow: number;
  /** Window over which failed logins are counted. */
  readonly authFailureWindow: number;
  /** Windows over which distinct source IPs are counted. */
  readonly distinctWindows: readonly number[];
  /** Time constant of the sending baseline (exponential decay), in seconds. */
  readonly baselineTau: number;
}

export type Stage = 'rcpt' | 'message' | 'auth';

export interface ObserveRequest {
  readonly sender: SenderId;
  readonly now: EpochMs;
  readonly ip: string | null;
  readonly stage: Stage;
  /** auth stage only. */
  readonly authOk?: boolean;
  /** Limits per window; empty means "do not test". */
  readonly limits: readonly WindowLimit[];
  /** rcpt: messages/recipients that would be added (tested, not added). message: added if admitted. */
  readonly messages: number;
  readonly recipients: number;
  /** Where `ip` is, when the door or engine knows it (countermeasure 3); stored with the address. */
  readonly place?: Place | null;
  /**
   * rcpt stage: this is the transaction's first RCPT, admitted or not. A refused transaction
   * counts one refusal (at its first RCPT, or at its end) and its address is recorded once
   * (at its first RCPT), however many recipients the client then tries. When absent,
   * `messages > 0` stands for it (callers that do not follow transactions).
   */
  readonly firstRcpt?: boolean;
}

/** Country (ISO 3166 alpha-2, or "--" for internal/unknown) and coordinates of an address. */
export interface Place {
  readonly country: string;
  /** Degrees; NaN when the database has no coordinates. */
  readonly lat: number;
  readonly lon: number;
}

/** The most recent other address the sender was seen from, for impossible-travel checks. */
export interface PreviousPlace {
  readonly ip: string;
  readonly place: Place;
  readonly t: EpochMs;
}

export interface WindowCount {
  readonly messages: number;
  readonly recipients: number;
}

export interface Exceeded {
  readonly window: number;
  readonly series: 'messages' | 'recipients';
  /** Count in the window before this request. */
  readonly count: number;
  readonly limit: number;
}

export interface PeekResult {
  readonly windows: readonly WindowCount[];
  readonly distinctIps: readonly number[];
  readonly distinctCountries: readonly number[];
  readonly suspended: boolean;
}

export interface SenderSnapshot {
  readonly suspended: boolean;
  /** False when a limit would be exceeded; then nothing was added and a breach was counted. */
  readonly admitted: boolean;
  readonly exceeded: Exceeded | null;
  /** Counts per window after this request. */
  readonly windows: readonly WindowCount[];
  /** Refused attempts within the breach window, this one included. */
  readonly breaches: number;
  /** Failed logins within the auth-failure window before this event. */
  readonly authFailures: number;
  /** Distinct source IPs per distinct window, this event's IP included. */
  readonly distinctIps: readonly number[];
  /** Distinct countries (of addresses with a known place) per distinct window, this event's included. */
  readonly distinctCountries: readonly number[];
  /**
   * Distinct source networks (IPv4 /24, IPv6 /48: src/store/source-prefix.ts) per distinct
   * window, this event's included; counted over the addresses the store keeps.
   */
  readonly distinctPrefixes: readonly number[];
  /**
   * When this event's address network (prefix) was first seen for the sender, this event
   * included when it records its address (a new network gives `now`); null without an
   * address, or when the network is not (yet) recorded (e.g. a failed login from it).
   */
  readonly prefixFirstSeen: EpochMs | null;
  /** The last place seen from another address, before this event; null when none is known. */
  readonly previous: PreviousPlace | null;
  /** Messages per hour averaged over the baseline time constant, before this message. */
  readonly baselinePerHour: number;
  /** Seconds since the first message this store saw from the sender. */
  readonly historySeconds: number;
}

export interface SourceIpStat {
  readonly ip: string;
  readonly country: string | null;
  readonly count: number;
  readonly firstSeen: EpochMs;
  readonly lastSeen: EpochMs;
}

export interface TopEntry {
  readonly sender: SenderId;
  readonly value: number;
}

export type TopMetric = 'source-ips' | 'countries' | 'messages' | 'recipients';

/**
 * Campaign detection (countermeasure 2): the same message fingerprint from several sender
 * IDs. One call per message with its fingerprints (at most a few); each fingerprint keeps
 * the sender IDs seen with it in the last `windowSeconds`. In Redis: per fingerprint a
 * sorted set (member sender, score time): ZADD, ZREMRANGEBYSCORE below now - window,
 * ZCARD, EXPIRE window — one pipelined round trip for all fingerprints of the message
 * (fingerprints are independent, so no cross-slot script is needed).
 */
export interface CampaignRequest {
  readonly sender: SenderId;
  readonly now: EpochMs;
  readonly windowSeconds: number;
  /** Opaque fingerprint strings (hex, a few tens of bytes). */
  readonly fingerprints: readonly string[];
}

export interface CampaignSnapshot {
  /** Distinct sender IDs per fingerprint within the window, this one included (same order). */
  readonly senders: readonly number[];
}

export interface CounterStore {
  readonly layout: CounterLayout;
  /** May answer synchronously (the embedded store does); callers await it either way. */
  observe(req: ObserveRequest): SenderSnapshot | Promise<SenderSnapshot>;
  /** Counts per window without changing anything (support tools). */
  peek(sender: SenderId, now: EpochMs): Promise<PeekResult>;
  /** The hot suspension flag; the durable record lives in the RecordStore. */
  setSuspended(sender: SenderId, suspended: boolean): Promise<void>;
  sourceIps(sender: SenderId, now: EpochMs): Promise<readonly SourceIpStat[]>;
  top(metric: TopMetric, windowSeconds: number, now: EpochMs, limit: number): Promise<readonly TopEntry[]>;
  /** Number of sender IDs currently tracked. */
  size(): Promise<number>;
  /** Records the sender for each fingerprint and counts distinct senders (optional: without it campaign detection is off). */
  observeCampaign?(req: CampaignRequest): Promise<CampaignSnapshot>;
  close(): Promise<void>;
}

/**
 * Whether a request opens its transaction's account: the first RCPT (or, without
 * `firstRcpt`, a request that tests the message itself) and the message stage when it adds
 * the message. A refusal counts and the client address is recorded only then.
 */
export function opensTransaction(req: ObserveRequest): boolean {
  return req.stage === 'message' ? req.messages > 0 : req.stage === 'rcpt' && (req.firstRcpt ?? req.messages > 0);
}
