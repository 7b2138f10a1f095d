// Configuration of delivery pools and routing (countermeasure 2), plugged into the
// config's types, defaults and schema (src/config/). docs/pools.md explains it.

/** A named delivery pool; the door maps the name to its source addresses (docs/pools.md). */
export interface PoolDefinition {
  readonly description?: string;
  /** For the standalone gateway: next hop "host:port" of this pool. */
  readonly nextHop?: string;
  /** For the standalone gateway: local source address to bind. */
  readonly sourceAddress?: string;
}

export interface RoutingConfig {
  /** Put a pool in message verdicts. */
  readonly enabled: boolean;
  /** Pool of mail classified not spam. */
  readonly clean: string;
  /** Pool of mail classified spam (or part of a campaign). */
  readonly suspect: string;
  /** Route of existing users who have not consented: the servers all mail used before the launch. */
  readonly existingUsers: string;
  /**
   * When routing by classification started (ISO 8601). Accounts created at or after it
   * are "new users" and are routed by classification from the start.
   */
  readonly launchAt: string;
  /** Consent to a notice with a lower version does not count (raise it when the notice changes materially). */
  readonly minConsentVersion: number;
}

export const DEFAULT_POOLS: Readonly<Record<string, PoolDefinition>> = {};

export const DEFAULT_ROUTING: RoutingConfig = {
  enabled: false,
  clean: 'clean',
  suspect: 'suspect',
  existingUsers: 'legacy',
  launchAt: '2026-12-01T00:00:00Z',
  minConsentVersion: 1,
};

const poolName = { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' } as const;

export const poolsSchema = {
  type: 'object',
  description: 'Countermeasure 2: named delivery pools, e.g. clean, suspect, legacy. docs/pools.md',
  propertyNames: { pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
  additionalProperties: {
    type: 'object',
    additionalProperties: false,
    properties: {
      description: { type: 'string', maxLength: 200 },
      nextHop: { type: 'string', minLength: 1 },
      sourceAddress: { type: 'string', minLength: 1 },
    },
  },
} as const;

export const routingSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Countermeasure 2: which pool a message leaves through; consent of existing users. docs/pools.md',
  properties: {
    enabled: { type: 'boolean' },
    clean: poolName,
    suspect: poolName,
    existingUsers: poolName,
    launchAt: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}T', description: 'ISO 8601 time routing by classification started; accounts created from then on are new users.' },
    minConsentVersion: { type: 'integer', minimum: 1 },
  },
} as const;
