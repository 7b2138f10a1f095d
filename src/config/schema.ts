import { contentSchema } from '../classify/config.ts';
import { poolsSchema, routingSchema } from '../pools/config.ts';
import { DURATION_PATTERN } from './duration.ts';

// JSON Schema (draft 2020-12) of the config file. `npm test` checks that
// docs/config.schema.json is this object, so the published schema cannot drift.

const duration = {
  oneOf: [
    { type: 'string', pattern: DURATION_PATTERN },
    { type: 'number', minimum: 0 },
  ],
  description: 'A duration: "90s", "10m", "1h", "7d", "1w", or a number of seconds.',
} as const;

const positiveInt = { type: 'integer', minimum: 1 } as const;
// Counter cells are 16-bit (see store/memory/ring-series.ts); limits above this would be unsafe.
const limitValue = { type: 'integer', minimum: 1, maximum: 65535 } as const;
// Refusals and failed logins are counted in 8-bit cells (ring-series.ts): thresholds stay below 255.
const eventThreshold = { type: 'integer', minimum: 1, maximum: 250 } as const;

function rule(description: string, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    type: 'object',
    additionalProperties: false,
    description,
    properties: {
      enabled: { type: 'boolean' },
      action: { enum: ['suspend', 'notify'], description: 'suspend sending, or only record a notice and an audit entry' },
      autoReleaseAfter: {
        oneOf: [duration, { type: 'null' }],
        description: 'Release automatically after this long (at most once per suspension.autoReleaseCooldown); null keeps the suspension until an operator releases it.',
      },
      ...extra,
    },
  };
}

/** A detection rule's familiar-network exception (sustainedBreach, baselineJump). */
function familiarAfter(what: string): Record<string, unknown> {
  return {
    oneOf: [duration, { type: 'null' }],
    description: `A source network (IPv4 /24, IPv6 /48) the ID first used at least this long ago is familiar: ${what}. null: no exception.`,
  };
}

const sourceCount = {
  window: duration,
  distinct: { type: 'integer', minimum: 2 },
  by: { enum: ['prefix', 'address'], description: "count distinct networks (IPv4 /24, IPv6 /48; default) or single addresses" },
} as const;

const countryCode = { type: 'string', pattern: '^[A-Z]{2}$' } as const;
const scale = { type: 'number', exclusiveMinimum: 0, maximum: 1 } as const;
const domain = { type: 'string', pattern: '^[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+$' } as const;
const cidrList = { type: 'array', items: { type: 'string', pattern: '^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$' } } as const;
const asnList = { type: 'array', items: { type: 'integer', minimum: 1, maximum: 4294967295 } } as const;
const penaltyAction = { enum: ['notify', 'limit', 'defer', 'reject', 'suspend'] } as const;
const penalty = {
  type: 'object',
  additionalProperties: false,
  properties: {
    action: penaltyAction,
    limitScale: scale,
    autoReleaseAfter: { oneOf: [duration, { type: 'null' }] },
  },
} as const;

export const configSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://fumidai.invalid/config.schema.json',
  title: 'fumidai configuration',
  type: 'object',
  additionalProperties: false,
  properties: {
    dataDir: { type: 'string', minLength: 1, description: 'Folder for the SQLite file and the admin token. Default ./fumidai-data' },
    policy: {
      type: 'object',
      additionalProperties: false,
      description: 'The Postfix SMTPD access policy delegation server.',
      properties: {
        listeners: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['listen'],
            properties: {
              listen: { type: 'string', minLength: 1, description: '"host:port", "[v6]:port" or "unix:/path"' },
              context: { type: 'string', minLength: 1, description: 'Context for requests without policy_context; see contexts.' },
            },
          },
        },
        requireAuth: { type: 'boolean', description: 'Refuse requests without sasl_username (default true).' },
        contexts: {
          type: 'object',
          description: 'Settings per Postfix policy_context value.',
          additionalProperties: {
            type: 'object',
            additionalProperties: false,
            properties: { requireAuth: { type: 'boolean' } },
          },
        },
        maxRequestBytes: { type: 'integer', minimum: 512, maximum: 1048576 },
        idleTimeout: duration,
        storeFailureAction: { enum: ['accept', 'defer'] },
      },
    },
    milter: {
      type: 'object',
      additionalProperties: false,
      description: 'The milter server (Postfix smtpd_milters, Sendmail INPUT_MAIL_FILTER); see docs/milter.md.',
      properties: {
        listeners: {
          type: 'array',
          description: 'Empty (default): no milter listener.',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['listen'],
            properties: {
              listen: { type: 'string', minLength: 1, description: '"host:port", "[v6]:port" or "unix:/path"' },
              context: { type: 'string', minLength: 1, description: 'Engine context for messages through this listener.' },
            },
          },
        },
        countMessages: {
          type: 'boolean',
          description: 'false (default): the policy server counts messages and the milter only judges content. true: the milter counts (milter-only setups).',
        },
        poolHeader: { type: 'string', pattern: '^[!-9;-~]{1,64}$', description: 'Header naming the pool, for milter_header_checks. Default X-Fumidai-Pool.' },
        senderTokenHeader: {
          oneOf: [{ type: 'string', pattern: '^[!-9;-~]{1,64}$' }, { type: 'null' }],
          description: 'Header with an opaque per-sender token for abuse desks (HMAC-SHA256, 128 bits, hex); null (default) = none.',
        },
        senderTokenSecret: { oneOf: [{ type: 'string', minLength: 16 }, { type: 'null' }], description: 'Secret of the sender token.' },
        maxMessageBytes: { type: 'integer', minimum: 4096, maximum: 67108864, description: 'Bytes of a message kept for the decision (default 524288).' },
        maxPacketBytes: { type: 'integer', minimum: 131072, maximum: 67108864, description: 'Largest milter packet accepted (default 4194304).' },
        idleTimeout: duration,
        packetTimeout: duration,
      },
    },
    admin: {
      type: 'object',
      additionalProperties: false,
      properties: {
        listen: { oneOf: [{ type: 'string', minLength: 1 }, { type: 'null' }], description: 'Loopback "host:port" of the JSON admin API; null disables it.' },
        token: { oneOf: [{ type: 'string', minLength: 16 }, { type: 'null' }] },
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      properties: {
        windows: {
          type: 'array',
          minItems: 1,
          maxItems: 8,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'seconds', 'messages', 'recipients'],
            properties: {
              name: { type: 'string', pattern: '^[a-z0-9-]+$' },
              seconds: duration,
              messages: limitValue,
              recipients: limitValue,
            },
          },
        },
        subBuckets: { type: 'integer', minimum: 1, maximum: 60 },
      },
    },
    detection: {
      type: 'object',
      additionalProperties: false,
      properties: {
        sustainedBreach: rule('Suspend after many refused attempts (limit breaches) in a window; from a familiar source network only notify.', {
          window: duration,
          refusals: eventThreshold,
          familiarAfter: familiarAfter('refusals from it only notify (the limits keep deferring)'),
        }),
        manySourceIps: rule('Suspend when an ID is used from many distinct source networks (or addresses) in a window.', sourceCount),
        burstSourceIps: rule('The same over a short window (botnets rotate addresses per message).', sourceCount),
        dailySourceIps: rule('The same over a day (slow botnets that stay under the hourly rules).', sourceCount),
        baselineJump: rule("Suspend when an ID sends far more than its own baseline.", {
          window: duration,
          factor: { type: 'number', minimum: 1 },
          minMessages: positiveInt,
          minHistory: duration,
          tau: duration,
          exemptOverrides: { type: 'boolean', description: 'Skip IDs with their own limits or a bulk window (active or ended within window): the operator approved their volume.' },
          familiarAfter: familiarAfter('a jump from it only notifies'),
        }),
        failedLoginsThenSuccess: rule('Suspend on a successful login after a run of failed ones.', {
          window: duration,
          failures: eventThreshold,
        }),
        familiarScope: {
          enum: ['network', 'as'],
          description:
            "What is familiar for sustainedBreach.familiarAfter and baselineJump.familiarAfter: 'network' only the request's own network (IPv4 /24, IPv6 /48); 'as' (default) also an address of the same autonomous system, the user's ISP, that the ID first used at least familiarAfter ago (a home line that reconnected from another address pool). Uses the ASN table: source.reputation.asnDatabase, or the bundled one.",
        },
      },
    },
    suspension: {
      type: 'object',
      additionalProperties: false,
      properties: { autoReleaseCooldown: duration },
    },
    state: {
      type: 'object',
      additionalProperties: false,
      description: 'Where counters and records live: "embedded" (memory + SQLite in dataDir, one node) or "redis-postgres" (shared by many nodes; docs/distributed.md).',
      properties: {
        backend: { enum: ['embedded', 'redis-postgres'] },
        redis: {
          type: 'object',
          additionalProperties: false,
          properties: {
            url: { type: 'string', pattern: '^rediss?://', description: 'redis://[user:password@]host:port[/db]' },
            keyPrefix: { type: 'string', pattern: '^[A-Za-z0-9:_.-]{1,64}$', description: 'Prefix of every key; nodes sharing state use the same one.' },
            commandTimeoutMs: { type: 'integer', minimum: 10, maximum: 60000, description: 'Milliseconds before an unanswered command fails (then policy.storeFailureAction applies).' },
            connectTimeoutMs: { type: 'integer', minimum: 10, maximum: 60000 },
            hllThreshold: { type: 'integer', minimum: 8, maximum: 256, description: 'Distinct source IPs are exact below this many retained addresses per sender, HyperLogLog from it on.' },
            cluster: { type: 'boolean', description: 'Redis Cluster: url names one node, the others are discovered (docs/distributed.md).' },
          },
        },
        postgres: {
          type: 'object',
          additionalProperties: false,
          properties: {
            url: { type: 'string', pattern: '^postgres(ql)?://', description: 'postgres://user[:password]@host:port/database' },
            schema: { type: 'string', pattern: '^[a-z_][a-z0-9_]{0,62}$' },
            queryTimeoutMs: { type: 'integer', minimum: 10, maximum: 600000 },
            poolSize: { type: 'integer', minimum: 1, maximum: 100 },
            userCacheTtl: { type: 'integer', minimum: 1, maximum: 86400, description: 'Seconds a cached user setting is trusted; changes are also pushed at once (LISTEN/NOTIFY).' },
            preloadUsers: { type: 'integer', minimum: 0, maximum: 10000000, description: 'Hold the whole users table in memory on every node when it has at most this many rows (kept current by LISTEN/NOTIFY); 0 = per-sender LRU cache only.' },
          },
        },
        resyncInterval: { type: 'integer', minimum: 1, maximum: 86400, description: 'Seconds between re-asserting open suspensions from PostgreSQL into Redis.' },
      },
    },
    metrics: {
      type: 'object',
      additionalProperties: false,
      properties: {
        listen: { oneOf: [{ type: 'string', minLength: 1 }, { type: 'null' }], description: 'Loopback "host:port" serving /metrics (Prometheus text) and /health without authentication; null disables it.' },
      },
    },
    replies: {
      type: 'object',
      additionalProperties: false,
      properties: {
        languages: { type: 'array', minItems: 1, items: { enum: ['ja', 'en'] }, uniqueItems: true },
        support: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\r\\n]*$' },
      },
    },
    source: {
      type: 'object',
      additionalProperties: false,
      description: 'Countermeasure 3: restriction by connection source (country, several regions, IP reputation). docs/connection-source.md',
      properties: {
        enabled: { type: 'boolean', description: 'Look up every client address (default true). Off: no country, no rules of this block.' },
        geo: {
          type: 'object',
          additionalProperties: false,
          properties: {
            database: {
              oneOf: [{ type: 'string', minLength: 1 }, { type: 'null' }],
              description: 'A .mmdb country or city database (MaxMind GeoIP2/GeoLite2 Country or City, or an ip-location-db file). null = the bundled CC BY 4.0 geo-whois-asn-country database.',
            },
            unknownCountry: { type: 'string', pattern: '^([A-Z]{2}|--)$', description: 'Country for public addresses the database does not know. "ZZ" (default) counts as abroad; "--" treats them as internal.' },
            watch: { type: 'boolean', description: 'Reload the database (and the Tor list) when the file changes. SIGHUP always reloads.' },
            overrides: {
              type: 'object',
              propertyNames: { pattern: '^[0-9A-Fa-f:.]+/[0-9]{1,3}$' },
              additionalProperties: { type: 'string', pattern: '^([A-Z]{2}|--)$' },
              description: 'Corrections for blocks the database places wrongly: {"126.52.128.0/19": "JP"}; "--" makes a block internal.',
            },
          },
        },
        homeCountries: { type: 'array', minItems: 1, items: countryCode, uniqueItems: true, description: 'Countries that are "home" (default ["JP"]).' },
        abroad: {
          type: 'object',
          additionalProperties: false,
          description: 'The per-user switch "allow sending from abroad", with travel exceptions.',
          properties: {
            enabled: { type: 'boolean' },
            defaultAllow: { type: 'boolean', description: 'For users whose settings say nothing (default false: the user turns it on).' },
            portal: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\r\\n]*$', description: 'Where users turn sending from abroad on; quoted in the refusal.' },
            action: { enum: ['reject', 'defer'] },
            maxTravel: duration,
            limitScale: scale,
            notify: { type: 'boolean', description: 'Record an abroad-attempt awareness notice for refused attempts from abroad.' },
          },
        },
        regions: {
          type: 'object',
          additionalProperties: false,
          description: 'Several countries at once and impossible travel, over logins and sends.',
          properties: {
            enabled: { type: 'boolean' },
            window: duration,
            steps: {
              type: 'array',
              maxItems: 8,
              items: { ...penalty, required: ['countries', 'action'], properties: { ...penalty.properties, countries: { type: 'integer', minimum: 2, maximum: 64 } } },
            },
            impossibleTravel: {
              ...penalty,
              properties: {
                ...penalty.properties,
                enabled: { type: 'boolean' },
                speedKmh: { type: 'number', exclusiveMinimum: 0 },
                minDistanceKm: { type: 'number', minimum: 0 },
              },
            },
            noticeInterval: duration,
          },
        },
        reputation: {
          type: 'object',
          additionalProperties: false,
          properties: {
            allow: {
              type: 'object',
              additionalProperties: false,
              description: 'Trusted relays, treated as internal (no country rules, no spoofing scope "abroad").',
              properties: { cidrs: cidrList, asns: asnList },
            },
            deny: {
              type: 'object',
              additionalProperties: false,
              properties: { cidrs: cidrList, asns: asnList, action: penaltyAction },
            },
            asnDatabase: { oneOf: [{ type: 'string', minLength: 1 }, { type: 'null' }], description: 'Folder with asn-ipv4-num.csv and asn-ipv6-num.csv (ip-location-db format); null = the bundled @ip-location-db/asn (CC BY 4.0). Loaded when an ASN list is set, and for detection.familiarScope "as" (the default) even with source.enabled false.' },
            torExitList: { oneOf: [{ type: 'string', minLength: 1 }, { type: 'null' }], description: 'File of Tor exit addresses (one per line, or the exit-addresses format); reloaded on change.' },
            torAction: penaltyAction,
            dnsbl: {
              type: 'object',
              additionalProperties: false,
              properties: {
                resolvers: { type: 'array', items: { type: 'string', minLength: 1 }, description: '"127.0.0.1:53"-style DNS servers; empty = the system resolvers.' },
                timeout: duration,
                cacheTtl: duration,
                negativeTtl: duration,
                errorTtl: duration,
                cacheSize: { type: 'integer', minimum: 100, maximum: 10000000 },
                zones: {
                  type: 'array',
                  items: {
                    type: 'object',
                    additionalProperties: false,
                    required: ['zone'],
                    properties: {
                      zone: { type: 'string', pattern: '^[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+$' },
                      codes: { type: 'array', items: { type: 'string', pattern: '^127\\.[0-9]+\\.[0-9]+\\.[0-9]+$' } },
                      action: penaltyAction,
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
    spoofing: {
      type: 'object',
      additionalProperties: false,
      description: 'Countermeasure 5: the login must match the sender address (envelope From, header From). docs/sender-spoofing.md',
      properties: {
        enabled: { type: 'boolean' },
        scope: { enum: ['always', 'abroad-only', 'signals'], description: 'always; abroad-only (default, the source document\'s choice); signals: only when abroad, listed, several countries or impossible travel.' },
        checkEnvelope: { type: 'boolean' },
        checkHeader: { type: 'boolean' },
        action: { enum: ['reject', 'defer', 'hold', 'pool'], description: 'pool: accept and route through `pool` (countermeasure 2).' },
        pool: { type: 'string', pattern: '^[a-z0-9-]+$' },
        defaultDomains: { type: 'array', items: domain, description: 'A login without "@" may send as login@domain for each.' },
        loginIsAddress: { type: 'boolean' },
        subaddressSeparator: { oneOf: [{ type: 'string', minLength: 1, maxLength: 1 }, { type: 'null' }] },
        exemptSenders: { type: 'array', items: { type: 'string', minLength: 1 } },
        exemptFromDomains: { type: 'array', items: domain },
      },
    },
    content: contentSchema,
    pools: poolsSchema,
    routing: routingSchema,
  },
} as const;
