import type { EpochMs, NoticeKind, SenderId } from '../engine/types.ts';
import type { WindowLimit } from './counter-store.ts';

// The record side of the state: durable, rarely written, read through a cache on the
// hot path. Suspensions and audit entries are written synchronously (they must survive
// kill -9); decision history may be written behind in batches.

export interface BulkWindow {
  readonly from: EpochMs;
  readonly until: EpochMs;
  /** Limits in force during the window, in the order of the configured windows. */
  readonly limits: readonly WindowLimit[];
  readonly reason: string;
}

/** How an address belongs to a user (countermeasure 5). */
export type AddressKind = 'primary' | 'alias' | 'third-party';

/** An address a user may send as. "@example.co.jp" stands for every address of that domain. */
export interface SenderAddress {
  readonly address: string;
  readonly kind: AddressKind;
  /** When a third-party address was verified (e.g. by a confirmation mail). */
  readonly verifiedAt?: EpochMs;
}

/** Countermeasure 2: a user's consent to delivery routed by classification (docs/pools.md). */
export interface PoolConsent {
  readonly at: EpochMs;
  /** Version of the notice the user was shown and agreed to. */
  readonly version: number;
  /** Where it was given: "portal", "support:<name>", "import". */
  readonly via: string;
}

export interface UserSettings {
  readonly sender: SenderId;
  /** Per-user limits replacing the defaults, in the order of the configured windows. */
  readonly limits: readonly WindowLimit[] | null;
  readonly bulkWindows: readonly BulkWindow[];
  readonly createdAt: EpochMs;
  /** Countermeasure 2: when the account was created (provisioning); decides "new user" (docs/pools.md). */
  readonly accountCreatedAt?: EpochMs | null;
  /** Countermeasure 2: the user's current consent to pool routing; absent or null = none. */
  readonly poolConsent?: PoolConsent | null;
  /** Countermeasure 3: may this user send from abroad; absent = source.abroad.defaultAllow. */
  readonly allowAbroad?: boolean;
  /** Countermeasure 3: travel exception, sending from abroad allowed until this time. */
  readonly abroadUntil?: EpochMs | null;
  /** Countermeasure 5: the addresses this user may send as; absent = derived from the login. */
  readonly addresses?: readonly SenderAddress[];
  /** Countermeasure 5: never check this user's sender addresses. */
  readonly spoofingExempt?: boolean;
}

/** Fields of a user's settings to replace; fields not given keep their stored value, null removes one. */
export type UserPatch = { readonly sender: SenderId } & { readonly [K in 'allowAbroad' | 'abroadUntil' | 'addresses' | 'spoofingExempt']?: UserSettings[K] | null };

export interface Suspension {
  readonly id: number;
  readonly sender: SenderId;
  readonly at: EpochMs;
  /** 'auto' for the engine, else the operator's name. */
  readonly by: string;
  readonly rule: string;
  readonly reason: string;
  readonly figures: Readonly<Record<string, number | string>>;
  readonly autoReleaseAt: EpochMs | null;
  readonly releasedAt: EpochMs | null;
  readonly releasedBy: string | null;
}

export interface AuditEntry {
  readonly id: number;
  readonly t: EpochMs;
  readonly sender: SenderId | null;
  readonly actor: string;
  readonly action: string;
  readonly detail: string;
}

export interface Notice {
  readonly id: number;
  readonly t: EpochMs;
  readonly sender: SenderId;
  readonly kind: NoticeKind;
  readonly data: Readonly<Record<string, number | string>>;
  readonly deliveredAt: EpochMs | null;
}

export interface DecisionRecord {
  readonly t: EpochMs;
  readonly sender: SenderId;
  readonly ip: string | null;
  readonly stage: string;
  readonly action: string;
  readonly code: number | null;
  readonly detail: string;
}

export interface AuditQuery {
  readonly sender?: SenderId;
  readonly since?: EpochMs;
  readonly limit: number;
}

export interface RecordStore {
  /** Settings of a user, or null when the user has none (defaults apply). */
  /** May answer synchronously from a cache (the embedded store does); callers await it either way. */
  user(sender: SenderId): UserSettings | null | Promise<UserSettings | null>;
  putUser(settings: UserSettings): Promise<void>;
  /**
   * Bulk import (identities, abroad switch): upserts many users in one transaction. A
   * field present in a patch replaces the stored one (null clears it), absent fields are
   * kept; a user without settings gets the defaults with createdAt = now. Optional while
   * a backend lacks it: callers then fall back to user() + putUser() per patch.
   */
  patchUsers?(patches: readonly UserPatch[], now: EpochMs): Promise<void>;
  /**
   * Countermeasure 2: records a consent durably (every consent is kept) and makes it the
   * user's current one (settings.poolConsent); a user without settings gets the defaults.
   * Optional while a backend lacks it: callers then fall back to user() + putUser().
   */
  recordPoolConsent?(sender: SenderId, consent: PoolConsent): Promise<UserSettings>;
  /** Countermeasure 2: every consent a user gave, newest first. */
  poolConsents?(sender: SenderId): Promise<readonly PoolConsent[]>;
  /** The open suspension of a sender, if any. */
  activeSuspension(sender: SenderId): Promise<Suspension | null>;
  /** All senders with an open suspension (to warm the hot flag at start). */
  activeSuspensions(): Promise<readonly Suspension[]>;
  suspensionHistory(sender: SenderId): Promise<readonly Suspension[]>;
  /** Durable before it resolves. Returns the new record; a second open suspension is not created. */
  suspend(s: Omit<Suspension, 'id' | 'releasedAt' | 'releasedBy'>): Promise<Suspension>;
  /** Closes the open suspension; resolves null when there was none. */
  release(sender: SenderId, at: EpochMs, by: string): Promise<Suspension | null>;
  /** Time of the latest automatic release of this sender, for the unblock-loop guard. */
  lastAutoRelease(sender: SenderId): Promise<EpochMs | null>;
  /** Suspensions whose automatic release is due. */
  dueAutoReleases(now: EpochMs): Promise<readonly Suspension[]>;
  audit(entry: Omit<AuditEntry, 'id'>): Promise<void>;
  auditLog(q: AuditQuery): Promise<readonly AuditEntry[]>;
  addNotice(n: Omit<Notice, 'id' | 'deliveredAt'>): Promise<void>;
  notices(sender: SenderId | null, limit: number): Promise<readonly Notice[]>;
  /** Written behind; may be lost on a crash (documented). */
  recordDecision(d: DecisionRecord): void;
  recentDecisions(sender: SenderId, limit: number): Promise<readonly DecisionRecord[]>;
  flush(): Promise<void>;
  close(): Promise<void>;
}
