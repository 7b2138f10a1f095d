// The normalised configuration the program runs with. The file format (YAML or JSON,
// durations as "10m") is described by schema.ts; load.ts turns a file into this.

export type Language = 'ja' | 'en';

export interface PolicyListener {
  /** "127.0.0.1:10040", "[::1]:10040" or "unix:/run/fumidai/policy.sock". */
  readonly listen: string;
  /** Context name for requests that carry no policy_context (see policy.contexts). */
  readonly context?: string;
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
    readonly sustainedBreach: DetectionRule & { readonly window: number; readonly refusals: number };
    readonly manySourceIps: DetectionRule & { readonly window: number; readonly distinct: number };
    readonly burstSourceIps: DetectionRule & { readonly window: number; readonly distinct: number };
    readonly baselineJump: DetectionRule & {
      readonly window: number;
      readonly factor: number;
      readonly minMessages: number;
      readonly minHistory: number;
      readonly tau: number;
    };
    readonly failedLoginsThenSuccess: DetectionRule & { readonly window: number; readonly failures: number };
  };
  readonly suspension: {
    /** An ID is released automatically at most once in this period (unblock-loop guard). */
    readonly autoReleaseCooldown: number;
  };
  readonly replies: {
    /** Languages in SMTP reply texts, in order. */
    readonly languages: readonly Language[];
    /** Shown to users in refusals: where to get help. */
    readonly support: string;
  };
}
