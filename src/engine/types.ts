// The engine's contract (ARCHITECTURE.md §2): events in, explainable verdicts out.
// Every front door (policy, milter, gateway, replay) builds these and nothing else.

import type { Place } from '../store/counter-store.ts';

declare const senderIdBrand: unique symbol;
/** The SASL login of a submitting client, normalised (trimmed, lower-cased). */
export type SenderId = string & { readonly [senderIdBrand]: true };

export function senderId(login: string): SenderId {
  return login.trim().toLowerCase() as SenderId;
}

/** Milliseconds since the Unix epoch. */
export type EpochMs = number;

/** Which front door produced an event; used for audit entries and per-door settings. */
export type DoorName = 'policy' | 'milter' | 'submission' | 'dovecot' | 'replay' | 'admin';

interface EventBase {
  readonly t: EpochMs;
  readonly door: DoorName;
  /** The SASL login, or null when the client did not authenticate. */
  readonly sender: SenderId | null;
  /** Client IP address as text, or null when the door does not know it. */
  readonly ip: string | null;
  /** Door-specific scope, e.g. Postfix's policy_context, so rules can differ per listener. */
  readonly context?: string;
}

export interface AuthEvent extends EventBase {
  readonly kind: 'auth';
  readonly ok: boolean;
  readonly method?: string;
  readonly protocol?: string;
}

export interface RcptEvent extends EventBase {
  readonly kind: 'rcpt';
  readonly mailFrom: string;
  readonly recipient: string;
  /** Recipients of this transaction already admitted before this one. */
  readonly pendingRecipients: number;
  /** RCPTs of this transaction already judged before this one, admitted or not (0: its first RCPT). */
  readonly triedRecipients: number;
  /** Correlates the RCPT and END-OF-MESSAGE requests of one transaction. */
  readonly transaction: string;
}

export interface MessageEvent extends EventBase {
  readonly kind: 'message';
  readonly mailFrom: string;
  /** Number of recipients the MTA accepted for this message. */
  readonly recipientCount: number;
  readonly size: number;
  readonly transaction: string;
  /** The From header's address, when the door sees headers (milter, gateway, replay). */
  readonly headerFrom?: string;
  /** Header fields in order as [name, value], when the door sees them. */
  readonly headers?: readonly (readonly [string, string])[];
  /** The raw RFC 5322 message, when the door has it (milter, gateway; replay optionally). */
  readonly raw?: Buffer;
  /** `raw` is only the first bytes of the message (the door's buffering cap); `size` is still the whole. */
  readonly rawTruncated?: boolean;
  /**
   * Content stage of a message another door already counted (docs/milter.md): the
   * policy server counted it at END-OF-MESSAGE, the milter then sees its content. The
   * engine judges it (suspension, content, spoofing, pools) but neither tests the
   * limits nor adds to any counter, so running both doors never counts a message twice.
   */
  readonly alreadyCounted?: boolean;
}

export type EngineEvent = AuthEvent | RcptEvent | MessageEvent;

export type Action = 'accept' | 'defer' | 'reject' | 'hold' | 'discard';

/** Why a verdict is what it is: which module, which rule, which numbers. */
export interface Reason {
  readonly module: string;
  readonly rule: string;
  /** One line in English for logs and support ("31 messages in 1m, limit 30"). */
  readonly detail: string;
  readonly figures?: Readonly<Record<string, number | string>>;
}

export type NoticeKind =
  | 'suspended'
  | 'released'
  | 'limit-reached'
  | 'suspicious'
  /** Countermeasures 3/6: mail was sent (or logins came) from two or more countries; change your password. */
  | 'multiple-countries'
  /** Countermeasures 3/6: two places too far apart for the time between them. */
  | 'impossible-travel'
  /** Countermeasures 3/6: someone with the right password tried to send from abroad while the switch was off. */
  | 'abroad-attempt';

export type Effect =
  | {
      readonly type: 'suspend';
      readonly sender: SenderId;
      readonly rule: string;
      readonly detail: string;
      readonly figures: Readonly<Record<string, number | string>>;
      /** When an automatic release is due, or null for "until an operator releases". */
      readonly autoReleaseAt: EpochMs | null;
    }
  | {
      readonly type: 'notice';
      readonly sender: SenderId;
      readonly kind: NoticeKind;
      readonly data: Readonly<Record<string, number | string>>;
    }
  | {
      readonly type: 'audit';
      readonly sender: SenderId | null;
      readonly action: string;
      readonly detail: string;
    };

export interface Verdict {
  readonly action: Action;
  /** SMTP reply code, e.g. 450 or 550; absent for a plain accept. */
  readonly code?: number;
  /** RFC 3463 enhanced status code, e.g. "4.7.1". */
  readonly enhanced?: string;
  /** Reply text without code, ready for the client. */
  readonly text?: string;
  /** Delivery pool name when a module chose one. */
  readonly pool?: string;
  readonly reasons: readonly Reason[];
  readonly effects: readonly Effect[];
}

// ---- Connection source (countermeasure 3) ----------------------------------------------
// Front doors pass only the client IP; the engine asks an injected resolver what is known
// about it (country, network, reputation) before its single store operation. The resolver
// lives in src/geo/; the engine never does I/O itself.

/** A reputation list the client address is on. */
export interface SourceListing {
  /** 'cidr'/'asn': the operator's deny lists; 'tor': the Tor exit list; 'dnsbl': a DNS blocklist. */
  readonly kind: 'cidr' | 'asn' | 'tor' | 'dnsbl';
  /** The entry or zone that matched, e.g. "192.0.2.0/24", "AS64500", "zen.example". */
  readonly list: string;
  readonly detail: string;
}

export interface SourceInfo {
  readonly ip: string;
  /**
   * Country "--" for internal addresses (loopback, private, special-use) and for trusted
   * relays on the operator's allow list; "ZZ" for a public address the database does not know.
   */
  readonly place: Place;
  /** Loopback, private or special-use address. */
  readonly internal: boolean;
  /** The allow-list entry that matched ("203.0.113.0/24", "AS15169"), or null. */
  readonly trusted: string | null;
  readonly asn: number | null;
  readonly listings: readonly SourceListing[];
}

export interface SourceResolver {
  /** What is known about an address; a promise only when a lookup (DNSBL) is outstanding. */
  resolve(ip: string, stage: EngineEvent['kind']): SourceInfo | Promise<SourceInfo>;
}

/**
 * The autonomous system (the network operator, e.g. the user's ISP) of an address, for the
 * detection rules' familiar-source exception (detection.familiarScope "as"). src/geo builds
 * one from the ASN table; in memory, so it answers synchronously.
 */
export interface NetworkOperatorLookup {
  /** The AS number, or null for an address no table entry holds (or not an address). */
  asnOf(ip: string): number | null;
}

export const ACCEPT: Verdict = Object.freeze({ action: 'accept', reasons: [], effects: [] });
