import type { EpochMs } from '../engine/types.ts';
import type { PoolConsent, UserSettings } from '../store/record-store.ts';
import type { RoutingConfig } from './config.ts';

// Who is routed by classification (countermeasure 2, source document: "launch for new
// users only; existing users move once they consent on the settings page").
//
//   before routing.launchAt            everyone stays on the existing route
//   consented                          poolConsent with version >= minConsentVersion, given
//                                      at or before the message: routed by classification
//   new user                           accountCreatedAt (from provisioning) at or after
//                                      launchAt: routed by classification from the start
//   otherwise (existing user)          stays on routing.existingUsers until consent
//
// A sender ID whose account creation time fumidai was never told counts as existing:
// a route change without consent is what the source document rules out, so the
// unknown case must not produce one. docs/pools.md.

export type RouteStatus =
  | { readonly kind: 'new'; readonly accountCreatedAt: EpochMs }
  | { readonly kind: 'consented'; readonly consent: PoolConsent }
  | { readonly kind: 'existing'; readonly why: 'before-launch' | 'no-consent' | 'consent-version-too-old' };

const launchCache = new Map<string, EpochMs>();

export function launchTime(routing: RoutingConfig): EpochMs {
  let t = launchCache.get(routing.launchAt);
  if (t === undefined) {
    t = Date.parse(routing.launchAt);
    if (Number.isNaN(t)) throw new Error(`routing.launchAt: not a date: ${routing.launchAt}`);
    launchCache.set(routing.launchAt, t);
  }
  return t;
}

export function routeStatus(settings: UserSettings | null, routing: RoutingConfig, now: EpochMs): RouteStatus {
  const launch = launchTime(routing);
  if (now < launch) return { kind: 'existing', why: 'before-launch' };
  const consent = settings?.poolConsent ?? null;
  if (consent !== null && consent.at <= now && consent.version >= routing.minConsentVersion) return { kind: 'consented', consent };
  const created = settings?.accountCreatedAt ?? null;
  if (created !== null && created >= launch) return { kind: 'new', accountCreatedAt: created };
  return { kind: 'existing', why: consent !== null && consent.version < routing.minConsentVersion ? 'consent-version-too-old' : 'no-consent' };
}
