// Configuration of content classification (countermeasure 2), kept beside the classifier
// and plugged into the config's types, defaults and schema (src/config/). Reasons for
// the defaults are in docs/classifier.md.

export type CampaignAction = 'route' | 'hold' | 'reject';

export interface ContentConfig {
  /** Classify messages that carry their content (milter, gateway, replay with `raw`). */
  readonly enabled: boolean;
  /** Model file; null = the model shipped in models/default.fmodel. */
  readonly model: string | null;
  /** Spam probability at or above which a message is "suspect" (suspect pool); null = the model's tuned threshold. */
  readonly suspect: number | null;
  /** At or above: hold (quarantine) the message; null = never. */
  readonly hold: number | null;
  /** At or above: refuse the message with 550 5.7.1; null = never. */
  readonly reject: number | null;
  /** The same message from several sender IDs in a short window: compromised accounts. */
  readonly campaign: {
    readonly enabled: boolean;
    /** Window in seconds over which distinct sender IDs per fingerprint are counted. */
    readonly windowSeconds: number;
    /** This many distinct sender IDs (this one included) make a campaign. */
    readonly senders: number;
    /** route: deliver through the suspect pool; hold or reject the message. */
    readonly action: CampaignAction;
  };
  /** Optional: also ask a real Rspamd (its /checkv2 on the normal worker) and combine the scores. */
  readonly rspamd: {
    /** e.g. "http://127.0.0.1:11333"; null = not used. */
    readonly url: string | null;
    readonly timeoutMs: number;
    /** Weight of Rspamd in the combined logit, 0..1 (ours has 1 - weight). */
    readonly weight: number;
    /** Rspamd score mapped to probability 0.5. */
    readonly center: number;
    /** Rspamd points per e-fold of odds. */
    readonly scale: number;
    /** When Rspamd fails or times out: use our score alone (true) or defer the message (false). */
    readonly failOpen: boolean;
  };
}

export const DEFAULT_CONTENT: ContentConfig = {
  enabled: true,
  model: null,
  suspect: null,
  hold: null,
  reject: null,
  campaign: { enabled: true, windowSeconds: 3600, senders: 5, action: 'route' },
  rspamd: { url: null, timeoutMs: 2000, weight: 0.5, center: 6, scale: 2, failOpen: true },
};

const probability = { oneOf: [{ type: 'number', minimum: 0, maximum: 1 }, { type: 'null' }] } as const;

export const contentSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Countermeasure 2: content classification of outgoing mail. docs/classifier.md',
  properties: {
    enabled: { type: 'boolean' },
    model: { oneOf: [{ type: 'string', minLength: 1 }, { type: 'null' }], description: 'Model file from "fumidai classifier train"; null = the shipped model.' },
    suspect: { ...probability, description: 'Spam probability from which mail goes through the suspect pool; null = the model\'s threshold.' },
    hold: { ...probability, description: 'Spam probability from which mail is held (quarantined); null = never.' },
    reject: { ...probability, description: 'Spam probability from which mail is refused (550 5.7.1); null = never.' },
    campaign: {
      type: 'object',
      additionalProperties: false,
      description: 'The same message (body or link set) from several sender IDs within a window.',
      properties: {
        enabled: { type: 'boolean' },
        windowSeconds: { type: 'integer', minimum: 60, maximum: 604800 },
        senders: { type: 'integer', minimum: 2, maximum: 100000 },
        action: { enum: ['route', 'hold', 'reject'] },
      },
    },
    rspamd: {
      type: 'object',
      additionalProperties: false,
      description: 'Optional Rspamd (HTTP /checkv2 of its normal worker) combined with our score.',
      properties: {
        url: { oneOf: [{ type: 'string', pattern: '^https?://' }, { type: 'null' }] },
        timeoutMs: { type: 'integer', minimum: 50, maximum: 60000 },
        weight: { type: 'number', minimum: 0, maximum: 1 },
        center: { type: 'number' },
        scale: { type: 'number', exclusiveMinimum: 0 },
        failOpen: { type: 'boolean' },
      },
    },
  },
} as const;
