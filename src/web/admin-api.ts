import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { FumidaiConfig } from '../config/config.ts';
import { parseDuration } from '../config/duration.ts';
import type { Engine } from '../engine/engine.ts';
import { senderId, type NetworkOperatorLookup, type SenderId } from '../engine/types.ts';
import type { CounterStore, TopMetric, WindowLimit } from '../store/counter-store.ts';
import type { BulkWindow, RecordStore, UserSettings } from '../store/record-store.ts';
import { lookup } from '../support/lookup.ts';
import { parseSenderAddress } from '../identity/addresses.ts';
import { importIdentities, parseUntil } from '../identity/import.ts';
import type { SenderAddress } from '../store/record-store.ts';
import { parseListenAddress } from '../doors/listen-address.ts';
import { PoolApiError, poolEndpoint } from '../pools/admin.ts';

// The authenticated JSON admin API the CLI (and later the console) uses. Loopback by
// default; every request needs "Authorization: Bearer <token>". Bodies are validated
// here and a bad one gets a 400 with the reason; nothing a client sends can crash the
// process.

export interface AdminDeps {
  readonly config: FumidaiConfig;
  readonly engine: Engine;
  readonly counters: CounterStore;
  readonly records: RecordStore;
  readonly token: string;
  readonly health?: () => Record<string, unknown>;
  /** AS numbers for the source addresses in lookups (serve passes the engine's). */
  readonly operators?: NetworkOperatorLookup | null;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const MAX_BODY = 64 * 1024;
const TOP_METRICS: readonly TopMetric[] = ['source-ips', 'countries', 'messages', 'recipients'];

export async function startAdminApi(deps: AdminDeps): Promise<{ address: string; close(): Promise<void> }> {
  const listen = deps.config.admin.listen;
  if (listen === null) throw new Error('admin.listen is null');
  const addr = parseListenAddress(listen);
  if (addr instanceof Error) throw new Error(`admin.listen: ${addr.message}`);
  const server = http.createServer((req, res) => {
    handle(req, deps).then(
      (body) => send(res, 200, body),
      (err: unknown) => {
        if (err instanceof HttpError) send(res, err.status, { error: err.message });
        else send(res, 500, { error: `internal error: ${(err as Error).message}` });
      },
    );
  });
  server.headersTimeout = 10_000;
  // No limit on a whole request (an identity import of millions of lines streams for
  // minutes); a connection idle for 30 s is closed instead.
  server.requestTimeout = 0;
  server.timeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (addr.kind === 'unix') server.listen(addr.path, resolve);
    else server.listen(addr.port, addr.host, resolve);
  });
  const bound = server.address();
  const address = typeof bound === 'object' && bound !== null ? `http://${bound.address.includes(':') ? `[${bound.address}]` : bound.address}:${bound.port}` : `unix:${String(bound)}`;
  return {
    address,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function authorised(req: http.IncomingMessage, token: string): boolean {
  const h = req.headers.authorization ?? '';
  const given = Buffer.from(h.startsWith('Bearer ') ? h.slice(7) : '');
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, `body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) return {};
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'body must be a JSON object');
  return body as Record<string, unknown>;
}

function text(body: Record<string, unknown>, key: string, required: boolean, max = 500): string | undefined {
  const v = body[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v.trim() === '' || v.length > max) throw new HttpError(400, `${key}: expected a non-empty string of at most ${max} characters`);
  return v;
}

function parseSender(raw: string): SenderId {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, 'sender ID is not valid URL encoding');
  }
  if (decoded.trim() === '' || decoded.length > 320 || /[\x00-\x1f\s]/.test(decoded)) throw new HttpError(400, 'sender ID must be 1-320 characters without spaces');
  return senderId(decoded);
}

function limitList(v: unknown, key: string, windows: number): WindowLimit[] {
  if (!Array.isArray(v) || v.length !== windows) throw new HttpError(400, `${key}: expected an array of ${windows} {messages, recipients} objects, one per configured window`);
  return v.map((x, i) => {
    const o = x as Record<string, unknown>;
    const ok = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 65535;
    if (typeof x !== 'object' || x === null || !ok(o.messages) || !ok(o.recipients)) {
      throw new HttpError(400, `${key}[${i}]: messages and recipients must be integers from 0 to 65535`);
    }
    return { messages: o.messages, recipients: o.recipients };
  });
}

function timeArg(v: string | null, key: string, now: number): number | undefined {
  if (v === null || v === '') return undefined;
  const d = parseDuration(v);
  if (!(d instanceof Error)) return now - d * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new HttpError(400, `${key}: expected a duration ("1h") or an ISO date`);
  return t;
}

async function handle(req: http.IncomingMessage, d: AdminDeps): Promise<unknown> {
  if (!authorised(req, d.token)) throw new HttpError(401, 'missing or wrong bearer token');
  const url = new URL(req.url ?? '/', 'http://admin');
  const parts = url.pathname.split('/').filter(Boolean);
  const method = req.method ?? 'GET';
  const now = d.engine.now();
  if (parts[0] !== 'api' || parts[1] !== 'v1') throw new HttpError(404, 'not found');
  const [resource, id, sub] = parts.slice(2);

  if (resource === 'health' && method === 'GET') {
    // The counter store may be unreachable (distributed backend): health still answers.
    return { ok: true, senders: await d.counters.size().catch(() => null), ...(d.health?.() ?? {}) };
  }
  if (resource === 'senders' && id !== undefined) {
    const sender = parseSender(id);
    if (sub === undefined && method === 'GET') return lookup(sender, { config: d.config, counters: d.counters, records: d.records, now, operators: d.operators ?? null });
    if (sub === 'suspend' && method === 'POST') {
      const body = await readJson(req);
      const reason = text(body, 'reason', true)!;
      const by = text(body, 'by', false, 100) ?? 'operator';
      return { suspension: await d.engine.suspendByOperator(sender, by, reason) };
    }
    if (sub === 'release' && method === 'POST') {
      const body = await readJson(req);
      const by = text(body, 'by', false, 100) ?? 'operator';
      const released = await d.engine.release(sender, by, text(body, 'note', false) ?? '');
      if (released === null) throw new HttpError(409, `${sender} has no open suspension`);
      return { released };
    }
  }
  if (resource === 'users' && id !== undefined && sub === 'pool') {
    // Countermeasure 2: route status, consent, account creation time (src/pools/admin.ts).
    try {
      return await poolEndpoint(method, parseSender(id), parts[5], () => readJson(req), { config: d.config, records: d.records, now });
    } catch (e) {
      throw e instanceof PoolApiError ? new HttpError(e.status, e.message) : e;
    }
  }
  if (resource === 'users' && id !== undefined) {
    const sender = parseSender(id);
    if (method === 'GET') return { settings: await d.records.user(sender) };
    if (method === 'PUT') return { settings: await putUser(sender, await readJson(req), d, now) };
  }
  if (resource === 'identities' && id === 'import' && method === 'POST') {
    // Streamed JSON Lines (src/identity/import.ts); no body size limit, batched transactions.
    const result = await importIdentities(req as AsyncIterable<Buffer>, d.records, { now, config: d.config });
    await d.records.audit({ t: now, sender: null, actor: 'operator', action: 'identities-import', detail: `${result.users} users, ${result.addresses} addresses, ${result.problemCount} bad lines in ${result.seconds.toFixed(1)} s` });
    return result;
  }
  if (resource === 'top' && method === 'GET') {
    const by = (url.searchParams.get('by') ?? 'source-ips') as TopMetric;
    if (!TOP_METRICS.includes(by)) throw new HttpError(400, `by: one of ${TOP_METRICS.join(', ')}`);
    const window = parseDuration(url.searchParams.get('window') ?? '1h');
    if (window instanceof Error || window <= 0) throw new HttpError(400, `window: ${window instanceof Error ? window.message : 'must be positive'}`);
    const limit = Number(url.searchParams.get('limit') ?? '20');
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new HttpError(400, 'limit: an integer from 1 to 1000');
    return { by, window, entries: await d.counters.top(by, window, now, limit) };
  }
  if (resource === 'audit' && method === 'GET') {
    const limit = Number(url.searchParams.get('limit') ?? '50');
    if (!Number.isInteger(limit) || limit < 1 || limit > 10000) throw new HttpError(400, 'limit: an integer from 1 to 10000');
    const s = url.searchParams.get('sender');
    const since = timeArg(url.searchParams.get('since'), 'since', now);
    return { entries: await d.records.auditLog({ limit, ...(s ? { sender: parseSender(s) } : {}), ...(since !== undefined ? { since } : {}) }) };
  }
  throw new HttpError(404, `no such endpoint: ${method} ${url.pathname}`);
}

async function putUser(sender: SenderId, body: Record<string, unknown>, d: AdminDeps, now: number): Promise<UserSettings> {
  const n = d.config.limits.windows.length;
  const existing = await d.records.user(sender);
  const limits = body.limits === undefined ? (existing?.limits ?? null) : body.limits === null ? null : limitList(body.limits, 'limits', n);
  let bulkWindows: BulkWindow[] = [...(existing?.bulkWindows ?? [])];
  if (body.bulkWindows !== undefined) {
    if (!Array.isArray(body.bulkWindows)) throw new HttpError(400, 'bulkWindows: expected an array');
    bulkWindows = body.bulkWindows.map((raw, i) => {
      const b = raw as Record<string, unknown>;
      const from = typeof b.from === 'string' ? Date.parse(b.from) : NaN;
      const until = typeof b.until === 'string' ? Date.parse(b.until) : NaN;
      if (Number.isNaN(from) || Number.isNaN(until) || until <= from) throw new HttpError(400, `bulkWindows[${i}]: from and until must be ISO dates, until after from`);
      const reason = typeof b.reason === 'string' && b.reason.trim() !== '' ? b.reason : null;
      if (reason === null) throw new HttpError(400, `bulkWindows[${i}].reason: say who approved it and why`);
      return { from, until, limits: limitList(b.limits, `bulkWindows[${i}].limits`, n), reason };
    });
  }
  const more = userFields(body, d, now, existing);
  const settings: UserSettings = { ...existing, ...more, sender, limits, bulkWindows, createdAt: existing?.createdAt ?? now };
  await d.records.putUser(settings);
  await d.records.audit({ t: now, sender, actor: 'operator', action: 'settings', detail: JSON.stringify({ limits, bulkWindows: bulkWindows.length, ...more, ...(more.addresses ? { addresses: more.addresses.length } : {}) }) });
  return settings;
}

/** Countermeasures 3 and 5 fields of PUT /users/:id: the abroad switch, a travel exception, identities. */
function userFields(body: Record<string, unknown>, d: AdminDeps, now: number, existing: UserSettings | null): Partial<UserSettings> {
  const out: { -readonly [K in keyof UserSettings]?: UserSettings[K] } = {};
  if (body.allowAbroad !== undefined) {
    if (body.allowAbroad !== null && typeof body.allowAbroad !== 'boolean') throw new HttpError(400, 'allowAbroad: true, false, or null for the operator default');
    out.allowAbroad = body.allowAbroad === null ? undefined : body.allowAbroad;
  }
  if (body.abroadUntil !== undefined) {
    const until = parseUntil(body.abroadUntil, { now, config: d.config });
    if (until instanceof Error) throw new HttpError(400, `abroadUntil: ${until.message}`);
    if (until !== null && until <= now) throw new HttpError(400, 'abroadUntil: must be in the future');
    out.abroadUntil = until;
  }
  if (body.addresses !== undefined) {
    if (body.addresses === null) {
      out.addresses = undefined;
    } else {
      if (!Array.isArray(body.addresses) || body.addresses.length > 1000) throw new HttpError(400, 'addresses: an array (at most 1000) of "a@x" strings or {address, kind} objects');
      const seen = new Set<string>();
      const list: SenderAddress[] = [];
      for (const [i, raw] of body.addresses.entries()) {
        const o = typeof raw === 'string' ? { address: raw, kind: 'alias' } : (raw as Record<string, unknown>);
        const kind = o?.kind ?? 'alias';
        if (kind !== 'primary' && kind !== 'alias' && kind !== 'third-party') throw new HttpError(400, `addresses[${i}].kind: primary, alias or third-party`);
        const a = parseSenderAddress(o?.address, kind);
        if (a instanceof Error) throw new HttpError(400, `addresses[${i}]: ${a.message}`);
        if (seen.has(a.address)) continue;
        seen.add(a.address);
        const before = existing?.addresses?.find((x) => x.address === a.address);
        list.push(kind === 'third-party' ? { ...a, verifiedAt: before?.verifiedAt ?? now } : a);
      }
      out.addresses = list;
    }
  }
  if (body.spoofingExempt !== undefined) {
    if (typeof body.spoofingExempt !== 'boolean') throw new HttpError(400, 'spoofingExempt: true or false');
    out.spoofingExempt = body.spoofingExempt;
  }
  return out;
}
