import type { FumidaiConfig } from '../config/config.ts';
import type { SenderSnapshot, WindowLimit } from '../store/counter-store.ts';
import type { UserSettings } from '../store/record-store.ts';
import type { Action, EngineEvent, NoticeKind, Reason, SenderId, SourceInfo } from './types.ts';

// The interface every countermeasure module implements. A module looks at one event
// and the sender's state after the engine's single store operation, and says what it
// found; the engine combines findings (the most severe action wins) and runs effects.
// Adding a module means adding a file and a line in measures/index.ts, nothing else.

export interface AssessContext {
  readonly event: EngineEvent & { readonly sender: SenderId };
  readonly config: FumidaiConfig;
  readonly settings: UserSettings | null;
  readonly limits: readonly WindowLimit[];
  readonly snapshot: SenderSnapshot;
  /** What the source resolver knows about the client address; null without an address or resolver. */
  readonly source?: SourceInfo | null;
}

/**
 * An awareness notice for the user (countermeasure 6), recorded at most once per
 * `onceWithin` seconds per kind (and per `data.step`, when given: a graded rule notifies
 * once per step it reaches).
 */
export interface NoticeRequest {
  readonly kind: NoticeKind;
  readonly data: Readonly<Record<string, number | string>>;
  readonly onceWithin: number;
}

export interface SuspendRequest {
  readonly rule: string;
  readonly detail: string;
  readonly figures: Readonly<Record<string, number | string>>;
  /** Seconds until automatic release, or null. The engine applies the unblock-loop guard. */
  readonly autoReleaseAfter: number | null;
  /** 'notify' records the finding without suspending. */
  readonly action: 'suspend' | 'notify';
  /**
   * When the finding only notifies (action 'notify', or spared below), its `suspicious`
   * notice and audit entry are recorded at most once per this many seconds: a client that
   * keeps pushing would otherwise add one per request.
   */
  readonly noticeWithin: number;
  /**
   * The rule spares the ID's familiar network operator (detection.familiarScope "as"): when
   * the ID first used an address of the request's autonomous system at least this many
   * seconds ago, the engine notifies instead of suspending. Modules cannot see the ID's
   * address list; the engine reads it only here, on the rare way to a suspension.
   */
  readonly familiarOperatorAfter?: number;
}

export interface Finding {
  readonly action: Action;
  readonly code?: number;
  readonly enhanced?: string;
  readonly text?: string;
  readonly reason: Reason;
  readonly suspend?: SuspendRequest;
  /** Record a limit-reached notice for the user. */
  readonly notifyLimit?: boolean;
  /** Record an awareness notice for the user. */
  readonly notice?: NoticeRequest;
  /** Deliver through this pool (countermeasure 2 pools); used when no finding refuses. */
  readonly pool?: string;
}

export interface Measure {
  readonly name: string;
  assess(ctx: AssessContext): Finding | null;
}

/** Higher is more severe; the engine keeps the most severe finding's reply. */
export const SEVERITY: Readonly<Record<Action, number>> = { accept: 0, hold: 1, defer: 2, discard: 3, reject: 4 };
