// Parameters of the simulated provider (docs/replay.md explains each and why). All
// rates are per user unless said otherwise; times are Japan Standard Time (UTC+9, no
// daylight saving) because the provider and nearly all its users are in Japan.

export const JST_OFFSET_MS = 9 * 3600_000;

/** How much a user sends: messages per active day, log-normal inside each class. */
export interface VolumeClass {
  readonly name: string;
  readonly share: number;
  /** Median messages per day (0: a dormant account that sends nothing). */
  readonly median: number;
  readonly sigma: number;
  /** Mean messages per sitting (session). */
  readonly perSession: number;
  /** Share of the class that works office hours (sends from a workplace on weekdays). */
  readonly office: number;
}

export const VOLUME_CLASSES: readonly VolumeClass[] = [
  { name: 'dormant', share: 0.08, median: 0, sigma: 0, perSession: 1, office: 0 },
  { name: 'light', share: 0.6, median: 1.0, sigma: 0.8, perSession: 1.3, office: 0.2 },
  { name: 'regular', share: 0.28, median: 5, sigma: 0.6, perSession: 1.7, office: 0.35 },
  { name: 'heavy', share: 0.035, median: 20, sigma: 0.5, perSession: 2.5, office: 0.5 },
  { name: 'business', share: 0.005, median: 60, sigma: 0.4, perSession: 3.5, office: 1 },
];

/** Day-to-day spread of a user's volume (log-normal sigma of a day's multiplier). */
export const DAY_NOISE_SIGMA = 0.5;

/** Relative sending activity per hour of the (local) day, 0h..23h. */
export const HOURS_PERSONAL_WEEKDAY = [1.0, 0.5, 0.25, 0.15, 0.1, 0.2, 0.6, 1.5, 2.5, 3.0, 3.2, 3.2, 3.5, 3.2, 3.0, 3.0, 3.0, 3.2, 3.6, 4.2, 4.8, 5.0, 4.2, 2.5];
export const HOURS_PERSONAL_WEEKEND = [1.2, 0.7, 0.35, 0.2, 0.12, 0.15, 0.3, 0.8, 1.8, 3.0, 3.6, 3.8, 3.8, 3.6, 3.4, 3.2, 3.2, 3.4, 3.8, 4.2, 4.6, 4.6, 3.8, 2.4];
export const HOURS_OFFICE_WEEKDAY = [0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 1.0, 4.0, 8.0, 9.0, 8.5, 5.0, 8.0, 8.5, 8.0, 7.5, 6.0, 3.5, 2.0, 1.5, 1.2, 0.8, 0.4];
/** Volume multiplier by weekday (0 = Sunday). */
export const DOW_PERSONAL = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.05];
export const DOW_OFFICE = [0.2, 1.0, 1.0, 1.0, 1.0, 1.0, 0.25];

/** Recipients per message: [weight, min, max]. */
export const RCPTS_PERSONAL: readonly (readonly [number, number, number])[] = [
  [0.7, 1, 1],
  [0.13, 2, 2],
  [0.07, 3, 3],
  [0.05, 4, 5],
  [0.035, 6, 10],
  [0.013, 11, 30],
  [0.002, 31, 60],
];
export const RCPTS_BUSINESS: readonly (readonly [number, number, number])[] = [
  [0.6, 1, 1],
  [0.15, 2, 2],
  [0.12, 3, 5],
  [0.1, 6, 20],
  [0.03, 21, 80],
];

/** Seconds between messages of one sitting: 10 s plus an exponential with this mean. */
export const SESSION_GAP_MEAN_S = 70;

/** Devices. */
export const MOBILE_USERS = 0.55; // share of users who send from a phone at all
export const MOBILE_ONLY = 0.15; // of those: no home PC, everything from the phone
export const OFFICE_HOURS_AT_WORK = 0.85; // office workers, weekday 9-18h: share sent from work
export const HOME_IP_CHANGE_PER_DAY = 0.03; // PPPoE reconnects, router reboots
/** CGNAT: a phone's public address comes from a small pool of /24s of its carrier's gateway. */
export const CGNAT_POOL_PREFIXES = 4;
export const CGNAT_POOL_MOVE_PER_DAY = 0.1; // the user moves to another region's gateway
/**
 * Chance that a phone's new connection keeps the previous public address, by the time
 * since its previous connection: [up to this many minutes, chance]. CGNs should keep a
 * device on one address while it has live mappings (RFC 6888 "paired" pooling), but the
 * address seen by servers does change between connections, more the longer the gap.
 */
export const CGNAT_KEEP: readonly (readonly [number, number])[] = [
  [2, 0.9],
  [30, 0.5],
  [Infinity, 0.2],
];
/** A phone at home in the evening or at night sends over the home Wi-Fi (home address). */
export const PHONE_ON_HOME_WIFI = 0.6;

/** Message sizes: log-normal body, sometimes an attachment. */
export const SIZE_MEDIAN = 6000;
export const ATTACHMENT_SHARE = 0.08;

/** Users who also send with an address of their own domain (third-party sending). */
export const THIRD_PARTY_USERS = 0.03;

/** Login mistakes. */
export const TYPO_PER_USER_DAY = 0.004; // 1-3 failed logins then a success, same device
export const STALE_PASSWORD_PER_USER_WEEK = 0.002; // a client keeps an old password for a while

/** Special users, per 10,000 users (at least one each when the scenario has 1,000 users or more). */
export const TRAVELLERS_PER_10K = 30;
export const BULK_SENDERS_PER_10K = 8;

/**
 * Attacks per 10,000 users per week (scaled by --attack-scale and --mix). Deliberately
 * more than a real provider sees (about 0.4 % of accounts a week), so that one week of
 * a 5,000-user provider has enough compromised accounts to measure.
 */
export interface AttackRates {
  readonly blast: number;
  readonly slowBotnet: number;
  readonly slowProxy: number;
  readonly single: number;
  readonly brute: number;
  /**
   * Credential-stuffing campaigns per week for the whole provider, whatever its size
   * (a campaign tries STUFFING_TARGET_SHARE of all accounts, so it scales by itself).
   */
  readonly stuffing: number;
}

export const ATTACKS_PER_10K_WEEK: AttackRates = {
  blast: 8,
  slowBotnet: 16,
  slowProxy: 8,
  single: 4,
  brute: 2,
  stuffing: 1,
};

/** A stuffing campaign tries this share of all accounts; this share of the tried ones works. */
export const STUFFING_TARGET_SHARE = 0.08;
export const STUFFING_SUCCESS = 0.02;
/** Of the accounts a stuffing campaign gets into, this share is later used to send. */
export const STUFFING_USED = 0.5;

/** The provider's domain: users' addresses are <id>@PROVIDER_DOMAIN. */
export const PROVIDER_DOMAIN = 'example.jp';

/** Recipient domains of legitimate mail, by weight. */
export const RCPT_DOMAINS: readonly (readonly [string, number])[] = [
  ['gmail.com', 22],
  ['yahoo.co.jp', 14],
  ['docomo.ne.jp', 9],
  ['icloud.com', 8],
  ['ezweb.ne.jp', 5],
  ['au.com', 3],
  ['softbank.ne.jp', 4],
  ['i.softbank.jp', 4],
  ['outlook.jp', 4],
  ['hotmail.co.jp', 2],
  ['example.jp', 6],
  ['biz', 19], // "biz" stands for one of many company domains (corpNNN.co.jp)
];
