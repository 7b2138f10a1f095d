import type { FumidaiConfig } from '../config/config.ts';
import type { EpochMs, SenderId } from '../engine/types.ts';
import type { PoolConsent, RecordStore, UserSettings } from '../store/record-store.ts';
import { routeStatus, type RouteStatus } from './routing.ts';

// Admin API of pool routing and consent (the portal screen comes later and will call
// the same functions):
//   GET  /api/v1/users/<id>/pool            route status, consent, consent history
//   POST /api/v1/users/<id>/pool/consent    {version, at?, via?}  record a consent
//   PUT  /api/v1/users/<id>/pool            {accountCreatedAt}    when the account was created

export class PoolApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface PoolDeps {
  readonly config: FumidaiConfig;
  readonly records: RecordStore;
  readonly now: EpochMs;
}

export interface PoolView {
  readonly sender: SenderId;
  readonly status: RouteStatus;
  /** The pool clean mail of this user leaves through now. */
  readonly route: string;
  readonly accountCreatedAt: EpochMs | null;
  readonly consent: PoolConsent | null;
  readonly history: readonly PoolConsent[];
}

export async function poolView(sender: SenderId, d: PoolDeps, settings?: UserSettings | null): Promise<PoolView> {
  const s = settings !== undefined ? settings : await d.records.user(sender);
  const status = routeStatus(s, d.config.routing, d.now);
  const history = (await d.records.poolConsents?.(sender)) ?? (s?.poolConsent ? [s.poolConsent] : []);
  return {
    sender,
    status,
    route: status.kind === 'existing' ? d.config.routing.existingUsers : d.config.routing.clean,
    accountCreatedAt: s?.accountCreatedAt ?? null,
    consent: s?.poolConsent ?? null,
    history,
  };
}

function isoTime(v: unknown, key: string): EpochMs {
  const t = typeof v === 'string' ? Date.parse(v) : NaN;
  if (Number.isNaN(t)) throw new PoolApiError(400, `${key}: expected an ISO 8601 time`);
  return t;
}

/** Records a consent (durable, audited) and returns the new view. */
export async function recordConsent(sender: SenderId, consent: PoolConsent, d: PoolDeps): Promise<PoolView> {
  let settings: UserSettings;
  if (d.records.recordPoolConsent !== undefined) settings = await d.records.recordPoolConsent(sender, consent);
  else {
    const current = (await d.records.user(sender)) ?? { sender, limits: null, bulkWindows: [], createdAt: consent.at };
    settings = { ...current, poolConsent: consent };
    await d.records.putUser(settings);
  }
  await d.records.audit({ t: d.now, sender, actor: consent.via, action: 'pool-consent', detail: `consented to pool routing, notice version ${consent.version}, at ${new Date(consent.at).toISOString()}` });
  return poolView(sender, d, settings);
}

export async function poolEndpoint(method: string, sender: SenderId, sub: string | undefined, body: () => Promise<Record<string, unknown>>, d: PoolDeps): Promise<unknown> {
  if (sub === undefined && method === 'GET') return poolView(sender, d);
  if (sub === 'consent' && method === 'POST') {
    const b = await body();
    const version = b.version;
    if (!Number.isInteger(version) || (version as number) < 1 || (version as number) > 1_000_000) throw new PoolApiError(400, 'version: the notice version, an integer from 1');
    const at = b.at === undefined ? d.now : isoTime(b.at, 'at');
    if (at > d.now + 60_000) throw new PoolApiError(400, 'at: a consent cannot be in the future');
    const via = b.via === undefined ? 'operator' : b.via;
    if (typeof via !== 'string' || via.trim() === '' || via.length > 100) throw new PoolApiError(400, 'via: where the consent was given ("portal", "support:NAME"), at most 100 characters');
    return recordConsent(sender, { at, version: version as number, via }, d);
  }
  if (sub === undefined && method === 'PUT') {
    const b = await body();
    if (!('accountCreatedAt' in b)) throw new PoolApiError(400, 'accountCreatedAt: an ISO 8601 time or null');
    const accountCreatedAt = b.accountCreatedAt === null ? null : isoTime(b.accountCreatedAt, 'accountCreatedAt');
    const current = (await d.records.user(sender)) ?? { sender, limits: null, bulkWindows: [], createdAt: d.now };
    const settings: UserSettings = { ...current, accountCreatedAt };
    await d.records.putUser(settings);
    await d.records.audit({ t: d.now, sender, actor: 'operator', action: 'account-created-at', detail: accountCreatedAt === null ? 'cleared' : new Date(accountCreatedAt).toISOString() });
    return poolView(sender, d, settings);
  }
  throw new PoolApiError(404, `no such endpoint: ${method} /api/v1/users/<id>/pool${sub ? `/${sub}` : ''}`);
}
