import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FumidaiConfig } from '../config/config.ts';
import { parseListenAddress } from '../doors/listen-address.ts';

// The CLI's support commands talk to a running `fumidai serve` through its admin API,
// so they work the same against the embedded and the distributed backend.

export class AdminClientError extends Error {
  override readonly name = 'AdminClientError';
}

export function adminToken(config: FumidaiConfig): string {
  if (config.admin.token !== null) return config.admin.token;
  const file = join(config.dataDir, 'admin.token');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    throw new AdminClientError(`no admin token: set admin.token in the config or start "fumidai serve" once so that it writes ${file}`);
  }
}

export async function adminRequest(config: FumidaiConfig, method: string, path: string, body?: unknown): Promise<unknown> {
  if (config.admin.listen === null) throw new AdminClientError('admin.listen is null in the config: the admin API is disabled');
  const addr = parseListenAddress(config.admin.listen);
  if (addr instanceof Error || addr.kind !== 'tcp') throw new AdminClientError(`admin.listen: the CLI needs a TCP "host:port" address`);
  const host = addr.host.includes(':') ? `[${addr.host}]` : addr.host;
  let res: Response;
  try {
    res = await fetch(`http://${host}:${addr.port}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken(config)}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    throw new AdminClientError(`cannot reach the admin API at ${config.admin.listen} (is "fumidai serve" running?): ${(e as Error).message}`);
  }
  const data = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) throw new AdminClientError(`admin API: ${res.status} ${String(data.error ?? res.statusText)}`);
  return data;
}
