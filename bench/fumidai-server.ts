// Starts our policy server for the benchmark: `node bin/fumidai.js serve --config <tmp.yaml>`,
// ready when it prints "fumidai: ready" and the port accepts.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { freePort, waitForPort } from './lib/proc.ts';
import { childServer, removeDir, spawnLogged, tempDir, waitForLine, type LimitSpec, type RunningServer, type ServerKind } from './lib/server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'fumidai.js');

/** The benchmark's fumidai config; `extra` lines (top-level YAML) are appended. */
export function configYaml(dataDir: string, port: number | 'PORT', spec: LimitSpec, extra: readonly string[] = []): string {
  return [
    `dataDir: ${JSON.stringify(dataDir)}`,
    'policy:',
    '  listeners:',
    `    - listen: "127.0.0.1:${port}"`,
    'admin:',
    '  listen: null',
    'limits:',
    '  windows:',
    `    - { name: hour, seconds: ${spec.windowSeconds}, messages: ${spec.limit}, recipients: ${spec.limit} }`,
    ...extra,
    '',
  ].join('\n');
}

function version(): string {
  let v = 'unknown';
  try {
    v = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? v;
  } catch {
    /* keep */
  }
  try {
    const rev = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src', 'bin'], { encoding: 'utf8' }).trim();
    v += ` (git ${rev}${dirty ? ', src/ or bin/ modified' : ''})`;
  } catch {
    /* no git */
  }
  return v;
}

/**
 * Runs `fumidai serve` with `configText` written into `dir` (removed again when the server
 * stops or fails to start); resolves once it printed "fumidai: ready" and `port` accepts.
 */
export async function serveFumidai(dir: string, port: number, configText: string): Promise<RunningServer> {
  const cfg = path.join(dir, 'fumidai.yaml');
  writeFileSync(cfg, configText);
  const { child, output } = spawnLogged(process.execPath, [BIN, 'serve', '--config', cfg], ROOT);
  try {
    await waitForLine(child, /fumidai: ready/, 30_000, output);
    await waitForPort(port, 10_000, () => child.exitCode === null);
  } catch (e) {
    child.kill('SIGKILL');
    removeDir(dir);
    throw e;
  }
  return childServer('fumidai', port, child, () => removeDir(dir));
}

export const fumidaiKind: ServerKind = {
  name: 'fumidai',
  slow: false,
  enforces: true,
  role: 'ours',
  unavailable: () =>
    existsSync(BIN) && existsSync(path.join(ROOT, 'src', 'doors', 'policy')) ? null : 'bin/fumidai.js or src/doors/policy/ does not exist yet',
  info: (spec) => ({
    name: 'fumidai',
    version: version(),
    does: `Rate limit per sasl_username: ${spec.limit} messages and ${spec.limit} recipients per ${spec.windowSeconds} s; detection rules at their defaults (no rule fires: 2 source IPs per user).`,
    config: configYaml('<tmp>/data', 'PORT', spec),
  }),
  start: async (spec) => {
    const dir = tempDir('fumidai');
    const port = await freePort();
    return serveFumidai(dir, port, configYaml(path.join(dir, 'data'), port, spec));
  },
};
