import { parseArgs } from 'node:util';
import type { FumidaiConfig } from '../config/config.ts';
import { formatDuration } from '../config/duration.ts';
import type { AuditEntry, Suspension } from '../store/record-store.ts';
import type { TopEntry } from '../store/counter-store.ts';
import type { LookupReport } from '../support/lookup.ts';
import { adminRequest, AdminClientError, adminToken } from './admin-client.ts';
import { parseListenAddress } from '../doors/listen-address.ts';
import { isoTime, table } from './table.ts';

// Support-desk commands (countermeasure 1, step 4). Tables for people, --json for scripts.

const enc = encodeURIComponent;

function print(json: boolean, data: unknown, human: () => string): void {
  process.stdout.write(`${json ? JSON.stringify(data, null, 2) : human()}\n`);
}

function suspensionLine(s: Suspension): string {
  const release = s.releasedAt !== null ? `released ${isoTime(s.releasedAt)} by ${s.releasedBy}` : s.autoReleaseAt !== null ? `auto-release ${isoTime(s.autoReleaseAt)}` : 'until released';
  return `#${s.id} ${isoTime(s.at)} by ${s.by}, rule ${s.rule}: ${s.reason} (${release})`;
}

export async function lookupCommand(config: FumidaiConfig, args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean' } }, allowPositionals: true });
  const id = positionals[0];
  if (!id) throw new AdminClientError('usage: fumidai lookup <sender-id> [--json]');
  const r = (await adminRequest(config, 'GET', `/api/v1/senders/${enc(id)}`)) as LookupReport;
  print(values.json ?? false, r, () => {
    const out = [`Sender ID: ${r.sender}   (limits: ${r.limitsSource})`];
    out.push(r.suspension ? `SUSPENDED: ${suspensionLine(r.suspension)}` : 'Sending: allowed');
    out.push('', table(['window', 'messages', 'limit', 'recipients', 'limit'], r.windows.map((w) => [`${w.name} (${formatDuration(w.seconds)})`, w.messages, w.messagesLimit, w.recipients, w.recipientsLimit])));
    if (r.pace) out.push(`Pace: ${r.pace.map((p) => `${p.perHour}/h over the ${p.name}`).join(', ')}`);
    out.push('', `Distinct source IPs: ${r.distinctIps.map((d) => `${d.count} in ${formatDuration(d.seconds)}`).join(', ')}`);
    if (r.distinctCountries) out.push(`Distinct countries: ${r.distinctCountries.map((d) => `${d.count} in ${formatDuration(d.seconds)}`).join(', ')}`);
    if (r.abroad) out.push(`Sending from abroad: ${r.abroad.allowed ? 'allowed' : 'not allowed'} (${r.abroad.why})`);
    if (r.addresses && r.addresses.length > 0) out.push(`Addresses: ${r.addresses.map((a) => `${a.address} (${a.kind})`).join(', ')}`);
    if (r.sourceIps.length > 0) out.push('', table(['source IP', 'country', 'network (AS)', 'count', 'first seen', 'last seen'], r.sourceIps.map((s) => [s.ip, s.country ?? '', s.asn == null ? '' : `AS${s.asn}`, s.count, isoTime(s.firstSeen), isoTime(s.lastSeen)])));
    if (r.recentDecisions.length > 0) {
      out.push('', 'Recent refusals:', table(['time', 'stage', 'action', 'code', 'ip', 'why'], r.recentDecisions.map((d) => [isoTime(d.t), d.stage, d.action, d.code ?? '', d.ip ?? '', d.detail])));
    }
    if (r.history.length > 0) out.push('', 'Suspension history:', ...r.history.map((s) => `  ${suspensionLine(s)}`));
    return out.join('\n');
  });
}

export async function suspendCommand(config: FumidaiConfig, args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, options: { reason: { type: 'string' }, by: { type: 'string' }, json: { type: 'boolean' } }, allowPositionals: true });
  const id = positionals[0];
  if (!id || !values.reason) throw new AdminClientError('usage: fumidai suspend <sender-id> --reason TEXT [--by NAME]');
  const r = (await adminRequest(config, 'POST', `/api/v1/senders/${enc(id)}/suspend`, { reason: values.reason, by: values.by ?? process.env.USER ?? 'operator' })) as { suspension: Suspension };
  print(values.json ?? false, r, () => `Suspended sending for ${id}: ${suspensionLine(r.suspension)}`);
}

export async function releaseCommand(config: FumidaiConfig, args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, options: { by: { type: 'string' }, note: { type: 'string' }, json: { type: 'boolean' } }, allowPositionals: true });
  const id = positionals[0];
  if (!id) throw new AdminClientError('usage: fumidai release <sender-id> [--by NAME] [--note TEXT]');
  const r = (await adminRequest(config, 'POST', `/api/v1/senders/${enc(id)}/release`, { by: values.by ?? process.env.USER ?? 'operator', ...(values.note ? { note: values.note } : {}) })) as { released: Suspension };
  print(values.json ?? false, r, () => `Released ${id}: ${suspensionLine(r.released)}`);
}

export async function topCommand(config: FumidaiConfig, args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { by: { type: 'string', default: 'source-ips' }, window: { type: 'string', default: '1h' }, limit: { type: 'string', default: '20' }, json: { type: 'boolean' } } });
  const q = new URLSearchParams({ by: values.by, window: values.window, limit: values.limit });
  const r = (await adminRequest(config, 'GET', `/api/v1/top?${q}`)) as { by: string; window: number; entries: TopEntry[] };
  print(values.json ?? false, r, () => `Top sender IDs by ${r.by} in the last ${formatDuration(r.window)}:\n` + table(['sender ID', r.by], r.entries.map((e) => [e.sender, e.value])));
}

export async function auditCommand(config: FumidaiConfig, args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { sender: { type: 'string' }, since: { type: 'string' }, limit: { type: 'string', default: '50' }, json: { type: 'boolean' } } });
  const q = new URLSearchParams({ limit: values.limit, ...(values.sender ? { sender: values.sender } : {}), ...(values.since ? { since: values.since } : {}) });
  const r = (await adminRequest(config, 'GET', `/api/v1/audit?${q}`)) as { entries: AuditEntry[] };
  print(values.json ?? false, r, () => table(['time', 'sender ID', 'actor', 'action', 'detail'], r.entries.map((e) => [isoTime(e.t), e.sender ?? '', e.actor, e.action, e.detail])));
}

/** Per-user limits and approved bulk windows (e.g. a municipal newsletter). */
export async function userCommand(config: FumidaiConfig, args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      limits: { type: 'string' },
      'default-limits': { type: 'boolean' },
      'bulk-until': { type: 'string' },
      'bulk-from': { type: 'string' },
      'bulk-scale': { type: 'string' },
      reason: { type: 'string' },
      json: { type: 'boolean' },
      abroad: { type: 'string' },
      'travel-until': { type: 'string' },
      'travel-days': { type: 'string' },
      'end-travel': { type: 'boolean' },
      address: { type: 'string', multiple: true },
      alias: { type: 'string', multiple: true },
      'third-party': { type: 'string', multiple: true },
      'clear-addresses': { type: 'boolean' },
      'spoofing-exempt': { type: 'string' },
    },
    allowPositionals: true,
  });
  const id = positionals[0];
  if (!id) throw new AdminClientError('usage: fumidai user <sender-id> [--limits M/R,M/R,...|--default-limits] [--bulk-until DATE --bulk-scale N --reason TEXT [--bulk-from DATE]] [--abroad on|off|default] [--travel-until DATE|--travel-days N|--end-travel] [--address A] [--alias A] [--third-party A] [--clear-addresses] [--spoofing-exempt on|off]');
  const body: Record<string, unknown> = {};
  Object.assign(body, sourceOptions(values));
  if (values['default-limits']) body.limits = null;
  if (values.limits) body.limits = parseLimitList(values.limits, config);
  if (values['bulk-until']) {
    const scale = Number(values['bulk-scale'] ?? '2');
    if (!(scale >= 1)) throw new AdminClientError('--bulk-scale: a number of at least 1');
    if (!values.reason) throw new AdminClientError('--reason: say who approved the bulk window and why');
    const current = ((await adminRequest(config, 'GET', `/api/v1/users/${enc(id)}`)) as { settings: { bulkWindows?: unknown[] } | null }).settings;
    body.bulkWindows = [
      ...(current?.bulkWindows ?? []).map((b) => {
        const w = b as { from: number; until: number; limits: unknown; reason: string };
        return { ...w, from: new Date(w.from).toISOString(), until: new Date(w.until).toISOString() };
      }),
      {
        from: values['bulk-from'] ?? new Date().toISOString(),
        until: values['bulk-until'],
        reason: values.reason,
        limits: config.limits.windows.map((w) => ({ messages: Math.min(65535, Math.round(w.messages * scale)), recipients: Math.min(65535, Math.round(w.recipients * scale)) })),
      },
    ];
  }
  const r = Object.keys(body).length === 0 ? await adminRequest(config, 'GET', `/api/v1/users/${enc(id)}`) : await adminRequest(config, 'PUT', `/api/v1/users/${enc(id)}`, body);
  print(values.json ?? false, r, () => JSON.stringify(r, null, 2));
}

/** --abroad, --travel-*, --address/--alias/--third-party, --spoofing-exempt as admin API fields. */
function sourceOptions(v: Record<string, string | boolean | string[] | undefined>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const onOff = (name: string, value: unknown, allowDefault: boolean): boolean | null => {
    if (value === 'on') return true;
    if (value === 'off') return false;
    if (allowDefault && value === 'default') return null;
    throw new AdminClientError(`--${name}: on or off${allowDefault ? ' or default' : ''}`);
  };
  if (v.abroad !== undefined) out.allowAbroad = onOff('abroad', v.abroad, true);
  if (v['spoofing-exempt'] !== undefined) out.spoofingExempt = onOff('spoofing-exempt', v['spoofing-exempt'], false);
  if (v['end-travel']) out.abroadUntil = null;
  if (typeof v['travel-until'] === 'string') {
    const raw = v['travel-until'];
    // A date alone means the end of that day in Japan.
    const t = /^\d{4}-\d{2}-\d{2}$/.test(raw) ? `${raw}T23:59:59+09:00` : raw;
    if (Number.isNaN(Date.parse(t))) throw new AdminClientError('--travel-until: a date (2026-12-08) or an ISO time with a zone');
    out.abroadUntil = new Date(Date.parse(t)).toISOString();
  }
  if (typeof v['travel-days'] === 'string') {
    const days = Number(v['travel-days']);
    if (!(days > 0)) throw new AdminClientError('--travel-days: a positive number of days');
    out.abroadUntil = new Date(Date.now() + days * 86400_000).toISOString();
  }
  const list = (x: unknown): string[] => (Array.isArray(x) ? (x as string[]) : []);
  const addrs = [
    ...list(v.address).map((a, i) => ({ address: a, kind: i === 0 ? 'primary' : 'alias' })),
    ...list(v.alias).map((a) => ({ address: a, kind: 'alias' })),
    ...list(v['third-party']).map((a) => ({ address: a, kind: 'third-party' })),
  ];
  if (v['clear-addresses']) out.addresses = null;
  if (addrs.length > 0) out.addresses = addrs;
  return out;
}

/** POSTs a stream as the request body (the JSON helper would buffer it whole). */
async function adminStream(config: FumidaiConfig, path: string, body: ReadableStream<Uint8Array>): Promise<unknown> {
  if (config.admin.listen === null) throw new AdminClientError('admin.listen is null in the config: the admin API is disabled');
  const addr = parseListenAddress(config.admin.listen);
  if (addr instanceof Error || addr.kind !== 'tcp') throw new AdminClientError('admin.listen: the CLI needs a TCP "host:port" address');
  const host = addr.host.includes(':') ? `[${addr.host}]` : addr.host;
  let res: Response;
  try {
    res = await fetch(`http://${host}:${addr.port}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken(config)}`, 'content-type': 'application/x-ndjson' },
      body,
      duplex: 'half',
    } as RequestInit);
  } catch (e) {
    throw new AdminClientError(`cannot reach the admin API at ${config.admin.listen} (is "fumidai serve" running?): ${(e as Error).message}`);
  }
  const data = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) throw new AdminClientError(`admin API: ${res.status} ${String(data.error ?? res.statusText)}`);
  return data;
}

/** `fumidai identities import FILE`: streams a JSON Lines file to the admin API. */
export async function identitiesCommand(config: FumidaiConfig, args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean' } }, allowPositionals: true });
  if (positionals[0] !== 'import' || positionals[1] === undefined) throw new AdminClientError('usage: fumidai identities import <file.jsonl|->');
  const file = positionals[1];
  const { createReadStream } = await import('node:fs');
  const { Readable } = await import('node:stream');
  const stream = file === '-' ? process.stdin : createReadStream(file);
  const r = (await adminStream(config, '/api/v1/identities/import', Readable.toWeb(stream) as ReadableStream<Uint8Array>)) as {
    lines: number;
    users: number;
    addresses: number;
    problemCount: number;
    problems: { line: number; problem: string }[];
    seconds: number;
    usersPerSecond: number;
  };
  print(values.json ?? false, r, () =>
    [
      `Imported ${r.users} users (${r.addresses} addresses) from ${r.lines} lines in ${r.seconds.toFixed(1)} s (${r.usersPerSecond}/s)`,
      ...(r.problemCount > 0 ? [`${r.problemCount} lines skipped:`, ...r.problems.slice(0, 20).map((p) => `  line ${p.line}: ${p.problem}`)] : []),
    ].join('\n'),
  );
}

function parseLimitList(text: string, config: FumidaiConfig): { messages: number; recipients: number }[] {
  const parts = text.split(',');
  if (parts.length !== config.limits.windows.length) {
    throw new AdminClientError(`--limits: give messages/recipients for each window (${config.limits.windows.map((w) => w.name).join(', ')}), e.g. 60/200,400/1000,2000/4000`);
  }
  return parts.map((p) => {
    const m = /^(\d+)\/(\d+)$/.exec(p.trim());
    if (!m) throw new AdminClientError(`--limits: "${p}" is not messages/recipients`);
    return { messages: Number(m[1]), recipients: Number(m[2]) };
  });
}
