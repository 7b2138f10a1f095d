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
        sustainedBreach: rule('Suspend after many refused attempts (limit breaches) in a window.', {
          window: duration,
          refusals: positiveInt,
        }),
        manySourceIps: rule('Suspend when an ID is used from many distinct source IPs in a window.', {
          window: duration,
          distinct: { type: 'integer', minimum: 2 },
        }),
        burstSourceIps: rule('The same over a short window (botnets rotate addresses per message).', {
          window: duration,
          distinct: { type: 'integer', minimum: 2 },
        }),
        baselineJump: rule("Suspend when an ID sends far more than its own baseline.", {
          window: duration,
          factor: { type: 'number', minimum: 1 },
          minMessages: positiveInt,
          minHistory: duration,
          tau: duration,
        }),
        failedLoginsThenSuccess: rule('Suspend on a successful login after a run of failed ones.', {
          window: duration,
          failures: positiveInt,
        }),
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
  },
} as const;
