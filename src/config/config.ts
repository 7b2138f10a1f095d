// The normalised configuration the program runs with. The file format (YAML or JSON,
// durations as "10m") is described by schema.ts; load.ts turns a file into this.

import type { ContentConfig } from '../classify/config.ts';
import type { PoolDefinition, RoutingConfig } from '../pools/config.ts';

export type Language = 'ja' | 'en';

export interface PolicyListener {
  /** "127.0.0.1:10040", "[::1]:10040" or "unix:/run/fumidai/policy.sock". */
  readonly listen: string;
  /** Context name for requests that carry no policy_context (see policy.contexts). */
  readonly context?: string;
}

export interface MilterListener {
  /** "127.0.0.1:10041", "[::1]:10041" or "unix:/run/fumidai/milter.sock". */
  readonly listen: string;
  /** Engine context for messages through this listener (like a policy listener's). */
  readonly context?: string;
}

/** The milter front door (docs/milter.md). */
export interface MilterConfig {
  /** Empty: no milter listener is started. */
  readonly listeners: readonly MilterListener[];
  /**
   * false (default): the policy server counts messages at END-OF-MESSAGE and the milter
   * only judges content (MessageEvent.alreadyCounted). true: the milter is the only door
   * (e.g. Sendmail) and counts each message against the limits itself.
   */
  readonly countMessages: boolean;
  /** Header added at end of message naming the verdict's pool, for milter_header_checks. */
  readonly poolHeader: string;
  /** Header with an opaque per-sender token (HMAC-SHA256) for abuse desks; null = none. */
  readonly senderTokenHeader: string | null;
  /** Secret of the sender token; required with senderTokenHeader. */
  readonly senderTokenSecret: string | null;
  /** Headers + body kept per message for the decision; the rest is counted, not kept. */
  readonly maxMessageBytes: number;
  /** Largest milter packet accepted; a larger length ends the connection. */
  readonly maxPacketBytes: number;
  /** Close a connection with no packet for this long (seconds); above smtpd_timeout. */
  readonly idleTimeout: number;
  /** A started packet must be complete within this many seconds. */
  readonly packetTimeout: number;
}

export interface LimitWindow {
  readonly name: string;
  readonly seconds: number;
  readonly messages: number;
  readonly recipients: number;
}

export type DetectionAction = 'suspend' | 'notify';

export interface DetectionRule {
  readonly enabled: boolean;
  readonly action: DetectionAction;
  /** Automatic release after this many seconds; null keeps the suspension until an operator releases. */
  readonly autoReleaseAfter: number | null;
}

/** Distinct sources of one ID in a window: networks (IPv4 /24, IPv6 /48) or single addresses. */
export interface SourceCountRule extends DetectionRule {
  readonly window: number;
  readonly distinct: number;
  /** 'prefix' counts networks (default; phones behind carrier NAT stay in a few), 'address' single addresses. */
  readonly by: 'prefix' | 'address';
}

export interface FumidaiConfig {
  readonly dataDir: string;
  readonly policy: {
    readonly listeners: readonly PolicyListener[];
    readonly requireAuth: boolean;
    /** Per Postfix policy_context: { requireAuth }. */
    readonly contexts: Readonly<Record<string, { readonly requireAuth?: boolean }>>;
    readonly maxRequestBytes: number;
    /** Close a connection idle this long; must exceed smtpd_policy_service_max_idle (300s). */
    readonly idleTimeout: number;
    /** What to answer when the state store fails: DUNNO (fail open) or a 4xx text (fail closed). */
    readonly storeFailureAction: 'accept' | 'defer';
  };
  readonly milter: MilterConfig;
  readonly admin: {
    readonly listen: string | null;
    /** Bearer token; when absent one is generated into dataDir/admin.token. */
    readonly token: string | null;
  };
  readonly limits: {
    readonly windows: readonly LimitWindow[];
    readonly subBuckets: number;
  };
  readonly detection: {
    readonly sustainedBreach: DetectionRule & {
      readonly window: number;
      readonly refusals: number;
      /**
       * Seconds a source network (IPv4 /24, IPv6 /48) must have been known for the ID to be
       * "familiar": refusals from a familiar network only notify (the limits keep deferring);
       * from an unfamiliar one they suspend as `action` says. null: always `action`.
       */
      readonly familiarAfter: number | null;
    };
    readonly manySourceIps: SourceCountRule;
    readonly burstSourceIps: SourceCountRule;
    /** Distinct source networks over a day: slow botnets that stay under the per-hour rules. */
    readonly dailySourceIps: SourceCountRule;
    readonly baselineJump: DetectionRule & {
      readonly window: number;
      readonly factor: number;
      readonly minMessages: number;
      readonly minHistory: number;
      readonly tau: number;
      /** Skip IDs an operator has given their own limits or a bulk window (active, or ended within `window`). */
      readonly exemptOverrides: boolean;
      /**
       * As sustainedBreach.familiarAfter: a jump from a network the ID first used at least
       * this many seconds ago only notifies; from any other network it suspends as `action`
       * says. null: always `action`.
       */
      readonly familiarAfter: number | null;
    };
    readonly failedLoginsThenSuccess: DetectionRule & { readonly window: number; readonly failures: number };
    /**
     * What counts as a familiar source for the rules' `familiarAfter`: 'network' is the
     * request's own IPv4 /24 or IPv6 /48 only; 'as' also any address of the same autonomous
     * system (the user's ISP: a home line that reconnected from another address pool) the ID
     * first used at least `familiarAfter` ago. 'as' needs the ASN table (bundled).
     */
    readonly familiarScope: 'network' | 'as';
  };
  readonly suspension: {
    /** An ID is released automatically at most once in this period (unblock-loop guard). */
    readonly autoReleaseCooldown: number;
  };
  /** Where the state lives (docs/distributed.md). */
  readonly state: StateConfig;
  /** Unauthenticated loopback listener with /metrics (Prometheus) and /health; null disables it. */
  readonly metrics: { readonly listen: string | null };
  readonly replies: {
    /** Languages in SMTP reply texts, in order. */
    readonly languages: readonly Language[];
    /** Shown to users in refusals: where to get help. */
    readonly support: string;
  };
  /** Countermeasure 3: restriction by connection source (docs/connection-source.md). */
  readonly source: SourceConfig;
  /** Countermeasure 5: sender-spoofing restriction (docs/sender-spoofing.md). */
  readonly spoofing: SpoofingConfig;
  /** Countermeasure 2: content classification of outgoing mail (docs/classifier.md). */
  readonly content: ContentConfig;
  /** Countermeasure 2: named delivery pools (docs/pools.md). */
  readonly pools: Readonly<Record<string, PoolDefinition>>;
  /** Countermeasure 2: which pool a message leaves through, and consent (docs/pools.md). */
  readonly routing: RoutingConfig;
}

/** State backend: embedded (SQLite + memory, one node) or Redis/Valkey + PostgreSQL shared by many nodes. */
export interface StateConfig {
  readonly backend: 'embedded' | 'redis-postgres';
  readonly redis: {
    readonly url: string;
    /** Prefix of every key (no braces); nodes sharing state use the same one. */
    readonly keyPrefix: string;
    /** A Redis command without a reply after this many milliseconds fails (then policy.storeFailureAction). */
    readonly commandTimeoutMs: number;
    readonly connectTimeoutMs: number;
    /** Distinct source IPs are counted exactly below this many retained addresses per sender, with HyperLogLog from it on. */
    readonly hllThreshold: number;
    /** Redis Cluster: url names one node (the others are discovered); the activity index is kept per slot. */
    readonly cluster: boolean;
  };
  readonly postgres: {
    readonly url: string;
    readonly schema: string;
    readonly queryTimeoutMs: number;
    readonly poolSize: number;
    /** Cached user settings are re-read after this many seconds (changes are pushed at once via LISTEN/NOTIFY). */
    readonly userCacheTtl: number;
    /** When the users table has at most this many rows, every node holds all of them in memory (0: never; then an LRU cache). */
    readonly preloadUsers: number;
  };
  /** Seconds between re-asserting open suspensions from PostgreSQL into Redis (also after every Redis reconnect). */
  readonly resyncInterval: number;
}

/**
 * What a connection-source rule does: `notify` records an awareness notice only; `limit`
 * applies the limits scaled by `limitScale` (refusals are 4xx); `defer` answers 4xx;
 * `reject` 5xx; `suspend` suspends sending.
 */
export type SourcePenalty = 'notify' | 'limit' | 'defer' | 'reject' | 'suspend';

export interface SourcePenaltyRule {
  readonly action: SourcePenalty;
  /** For `limit`: factor applied to the limits in force (0.2 = a fifth); default 1. */
  readonly limitScale?: number;
  /** For `suspend`: automatic release after this many seconds; null/absent = until an operator releases. */
  readonly autoReleaseAfter?: number | null;
}

export interface DnsblZone {
  /** e.g. "zen.spamhaus.org" (check the list's terms for your volume first). */
  readonly zone: string;
  /** A records that count as listed, e.g. ["127.0.0.4"]; empty or absent = any 127.x answer. */
  readonly codes?: readonly string[];
  /** Default reject. */
  readonly action?: SourcePenalty;
}

export interface SourceConfig {
  readonly enabled: boolean;
  readonly geo: {
    /** A MaxMind-format (.mmdb) country or city database; null = the bundled geo-whois-asn-country. */
    readonly database: string | null;
    /** Country code for public addresses the database does not know ("ZZ": counted as abroad). */
    readonly unknownCountry: string;
    /** Reload the database when the file changes (SIGHUP always reloads). */
    readonly watch: boolean;
    /** Corrections: CIDR block → country code ("--" = internal), decided before the database. */
    readonly overrides: Readonly<Record<string, string>>;
  };
  /** ISO 3166 codes where sending is "at home" (default JP). */
  readonly homeCountries: readonly string[];
  readonly abroad: {
    readonly enabled: boolean;
    /** For users whose settings say nothing: may they send from abroad? */
    readonly defaultAllow: boolean;
    /** How a user turns sending from abroad on; shown in the refusal, e.g. "マイページ https://…". */
    readonly portal: string;
    /** What a refused attempt from abroad gets. */
    readonly action: 'reject' | 'defer';
    /** Longest travel exception (seconds). */
    readonly maxTravel: number;
    /** Users allowed abroad get their limits scaled by this while abroad (1 = unchanged). */
    readonly limitScale: number;
    /** Record an abroad-attempt awareness notice for refused attempts from abroad. */
    readonly notify: boolean;
  };
  /** Several countries at once and impossible travel, over logins and sends. */
  readonly regions: {
    readonly enabled: boolean;
    readonly window: number;
    readonly steps: readonly (SourcePenaltyRule & { readonly countries: number })[];
    readonly impossibleTravel: SourcePenaltyRule & {
      readonly enabled: boolean;
      readonly speedKmh: number;
      readonly minDistanceKm: number;
    };
    readonly noticeInterval: number;
  };
  readonly reputation: {
    /** Trusted relays, treated as internal (no country rules, no spoofing scope "abroad"). */
    readonly allow: { readonly cidrs: readonly string[]; readonly asns: readonly number[] };
    readonly deny: { readonly cidrs: readonly string[]; readonly asns: readonly number[]; readonly action: SourcePenalty };
    /** Folder with asn-ipv4-num.csv and asn-ipv6-num.csv; null = the bundled @ip-location-db/asn. */
    readonly asnDatabase: string | null;
    /** File of Tor exit addresses; reloaded on change. */
    readonly torExitList: string | null;
    readonly torAction: SourcePenalty;
    readonly dnsbl: {
      /** "127.0.0.1:53"-style DNS servers; empty = the system resolvers. */
      readonly resolvers: readonly string[];
      readonly timeout: number;
      readonly cacheTtl: number;
      readonly negativeTtl: number;
      readonly errorTtl: number;
      readonly cacheSize: number;
      readonly zones: readonly DnsblZone[];
    };
  };
}

export interface SpoofingConfig {
  readonly enabled: boolean;
  /** always; abroad-only (default); signals: only when abroad, listed, several countries or impossible travel. */
  readonly scope: 'always' | 'abroad-only' | 'signals';
  readonly checkEnvelope: boolean;
  readonly checkHeader: boolean;
  /** pool: accept and route through `pool` (countermeasure 2). */
  readonly action: 'reject' | 'defer' | 'hold' | 'pool';
  readonly pool: string;
  /** A login without "@" may send as login@domain for each. */
  readonly defaultDomains: readonly string[];
  readonly loginIsAddress: boolean;
  readonly subaddressSeparator: string | null;
  readonly exemptSenders: readonly string[];
  readonly exemptFromDomains: readonly string[];
}
