import { DEFAULT_CONTENT } from '../classify/config.ts';
import { DEFAULT_POOLS, DEFAULT_ROUTING } from '../pools/config.ts';
import type { FumidaiConfig } from './config.ts';

// Defaults, with the reasons in docs/limits.md. In short: the per-minute limit follows
// Exchange Online's 30 messages/min for SMTP submission, the hourly one the EOP
// "Standard" recommendation (500 external recipients/h), the daily one IIJmio's and
// EOP's 1,000 messages/day. Detection thresholds were tuned on simulated traffic and
// checked on scenarios with other seeds (docs/replay-results.md).
/**
 * How long an ID must have used a network before it is familiar (sustainedBreach and
 * baselineJump only notify for it; docs/limits.md): a little under a week, so that a
 * weekly newsletter from the office finds its network familiar the next week (the
 * newsletter's time of day varies: on the tuning scenario one came 6.98 d after the first).
 */
export const FAMILIAR_AFTER = 6 * 86400;

export const DEFAULT_CONFIG: FumidaiConfig = {
  dataDir: './fumidai-data',
  policy: {
    listeners: [{ listen: '127.0.0.1:10040' }],
    requireAuth: true,
    contexts: {},
    maxRequestBytes: 16384,
    idleTimeout: 3600,
    storeFailureAction: 'defer',
  },
  // The milter door is off until a listener is configured (docs/milter.md). 512 KiB of a
  // message is plenty for content classification; Postfix's milter_command_timeout is
  // 30s and smtpd_timeout 300s, so an hour of silence means the MTA is gone.
  milter: {
    listeners: [],
    countMessages: false,
    poolHeader: 'X-Fumidai-Pool',
    senderTokenHeader: null,
    senderTokenSecret: null,
    maxMessageBytes: 512 * 1024,
    maxPacketBytes: 4 * 1024 * 1024,
    idleTimeout: 3600,
    packetTimeout: 60,
  },
  admin: { listen: '127.0.0.1:10050', token: null },
  limits: {
    windows: [
      { name: 'minute', seconds: 60, messages: 30, recipients: 100 },
      { name: 'hour', seconds: 3600, messages: 200, recipients: 500 },
      { name: 'day', seconds: 86400, messages: 1000, recipients: 2000 },
    ],
    subBuckets: 10,
  },
  detection: {
    sustainedBreach: { enabled: true, action: 'suspend', autoReleaseAfter: 86400, window: 600, refusals: 10, familiarAfter: FAMILIAR_AFTER },
    manySourceIps: { enabled: true, action: 'suspend', autoReleaseAfter: null, window: 3600, distinct: 8, by: 'prefix' },
    burstSourceIps: { enabled: true, action: 'suspend', autoReleaseAfter: null, window: 600, distinct: 6, by: 'prefix' },
    dailySourceIps: { enabled: true, action: 'suspend', autoReleaseAfter: null, window: 86400, distinct: 12, by: 'prefix' },
    baselineJump: {
      enabled: true,
      action: 'suspend',
      autoReleaseAfter: 86400,
      window: 3600,
      factor: 20,
      minMessages: 60,
      minHistory: 7 * 86400,
      tau: 7 * 86400,
      exemptOverrides: true,
      familiarAfter: FAMILIAR_AFTER,
    },
    failedLoginsThenSuccess: { enabled: true, action: 'suspend', autoReleaseAfter: null, window: 3600, failures: 20 },
    familiarScope: 'as',
  },
  suspension: { autoReleaseCooldown: 30 * 86400 },
  replies: { languages: ['ja', 'en'], support: 'your mail provider\'s support desk' },
  // Countermeasure 3, reasons in docs/connection-source.md: sending from abroad is off
  // unless the user turns it on (iTSCOM, onamae.com and Sixcore ship it that way); several
  // countries within an hour is graded from tighter limits to suspension.
  source: {
    enabled: true,
    geo: { database: null, unknownCountry: 'ZZ', watch: true, overrides: {} },
    homeCountries: ['JP'],
    abroad: {
      enabled: true,
      defaultAllow: false,
      portal: 'the member portal (マイページ)',
      action: 'reject',
      maxTravel: 31 * 86400,
      limitScale: 1,
      notify: true,
    },
    regions: {
      enabled: true,
      window: 3600,
      steps: [
        { countries: 2, action: 'limit', limitScale: 0.2, autoReleaseAfter: null },
        { countries: 3, action: 'defer', limitScale: 1, autoReleaseAfter: null },
        { countries: 4, action: 'suspend', limitScale: 1, autoReleaseAfter: null },
      ],
      impossibleTravel: { enabled: true, action: 'notify', limitScale: 1, autoReleaseAfter: null, speedKmh: 1000, minDistanceKm: 1500 },
      noticeInterval: 86400,
    },
    reputation: {
      allow: { cidrs: [], asns: [] },
      deny: { cidrs: [], asns: [], action: 'reject' },
      asnDatabase: null,
      torExitList: null,
      torAction: 'reject',
      dnsbl: { resolvers: [], timeout: 0.5, cacheTtl: 3600, negativeTtl: 900, errorTtl: 60, cacheSize: 100_000, zones: [] },
    },
  },
  // Countermeasure 5, reasons in docs/sender-spoofing.md: checked for connections from
  // abroad only, so legitimate third-party sending at home keeps working.
  spoofing: {
    enabled: true,
    scope: 'abroad-only',
    checkEnvelope: true,
    checkHeader: true,
    action: 'reject',
    pool: 'suspect',
    defaultDomains: [],
    loginIsAddress: true,
    subaddressSeparator: '+',
    exemptSenders: [],
    exemptFromDomains: [],
  },
  state: {
    backend: 'embedded',
    redis: { url: 'redis://127.0.0.1:6379', keyPrefix: 'fumidai', commandTimeoutMs: 250, connectTimeoutMs: 1000, hllThreshold: 256, cluster: false },
    postgres: { url: 'postgres://127.0.0.1:5432/fumidai', schema: 'fumidai', queryTimeoutMs: 2000, poolSize: 4, userCacheTtl: 60, preloadUsers: 50000 },
    resyncInterval: 60,
  },
  metrics: { listen: null },
  // Countermeasure 2, reasons in docs/classifier.md and docs/pools.md.
  content: DEFAULT_CONTENT,
  pools: DEFAULT_POOLS,
  routing: DEFAULT_ROUTING,
};
