import { parseArgs } from 'node:util';
import { adminRequest, AdminClientError } from '../cli/admin-client.ts';
import type { FumidaiConfig } from '../config/config.ts';
import type { PoolView } from './admin.ts';

// `fumidai consent <id> --version N [--at TIME] [--via WHERE]`  record a consent
// `fumidai consent <id> --account-created TIME|none`             when the account was created
// `fumidai consent <id>`                                          show route status and consents

function describe(v: PoolView): string {
  const s = v.status;
  const status =
    s.kind === 'new'
      ? `new user (account created ${new Date(s.accountCreatedAt).toISOString()}): routed by classification`
      : s.kind === 'consented'
        ? `consented (notice v${s.consent.version}, ${new Date(s.consent.at).toISOString()}, via ${s.consent.via}): routed by classification`
        : `existing user (${s.why}): stays on pool ${v.route}`;
  const lines = [`Sender ID: ${v.sender}`, `Routing: ${status}`];
  lines.push(`Account created: ${v.accountCreatedAt === null ? 'unknown' : new Date(v.accountCreatedAt).toISOString()}`);
  if (v.history.length > 0) lines.push('Consents:', ...v.history.map((c) => `  ${new Date(c.at).toISOString()}  notice v${c.version}  via ${c.via}`));
  return lines.join('\n');
}

export async function consentCommand(config: FumidaiConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { version: { type: 'string' }, at: { type: 'string' }, via: { type: 'string' }, 'account-created': { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const id = positionals[0];
  if (id === undefined || positionals.length > 1) throw new AdminClientError('usage: fumidai consent <sender-id> [--version N [--at TIME] [--via WHERE]] [--account-created TIME|none] [--json]');
  const path = `/api/v1/users/${encodeURIComponent(id)}/pool`;
  let view: PoolView;
  if (values['account-created'] !== undefined) {
    const v = values['account-created'];
    view = (await adminRequest(config, 'PUT', path, { accountCreatedAt: v === 'none' ? null : v })) as PoolView;
  }
  if (values.version !== undefined) {
    const version = Number(values.version);
    if (!Number.isInteger(version) || version < 1) throw new AdminClientError('--version: the notice version the user agreed to, an integer from 1');
    view = (await adminRequest(config, 'POST', `${path}/consent`, { version, ...(values.at ? { at: values.at } : {}), via: values.via ?? `support:${process.env.USER ?? 'operator'}` })) as PoolView;
  }
  view ??= (await adminRequest(config, 'GET', path)) as PoolView;
  process.stdout.write(`${values.json ? JSON.stringify(view, null, 2) : describe(view)}\n`);
  return 0;
}
