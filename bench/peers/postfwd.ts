// Debian's postfwd (/usr/sbin/postfwd → postfwd2 1.35 via alternatives) as a benchmark peer.
//
// postfwd2 always daemonizes when it serves a socket: `--nodaemon` is stdin-only and
// disables rate() (no cache daemon). So we start it with a temp pid file, read the
// master pid from it, and account CPU over the master's whole process tree (cache
// daemon, policy server, its pre-forked children). Stop = SIGTERM to every pid of that
// tree, collected before signalling, then SIGKILL after a grace period.
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, isAlive, processTree, sleep, stopPids, treeCpuSeconds, waitForPort } from '../lib/proc.ts';
import { removeDir, tempDir, type LimitSpec, type RunningServer, type ServerKind } from '../lib/server.ts';

const BIN = '/usr/sbin/postfwd';

function rules(spec: LimitSpec): string {
  return [
    '# Written by bench/peers/postfwd.ts: a rate limit per sasl_username, counted at RCPT.',
    `id=RATE_SASL; protocol_state==RCPT; sasl_username=~.; action=rate(sasl_username/${spec.limit}/${spec.windowSeconds}/450 4.7.1 rate limit exceeded)`,
    '',
  ].join('\n');
}

function runAs(): { user: string; group: string; uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null; // not root: it cannot switch users; run as ourselves
  const id = (args: string[]): number => Number(execFileSync('id', args, { encoding: 'utf8' }).trim());
  try {
    return { user: 'nobody', group: 'nogroup', uid: id(['-u', 'nobody']), gid: Number(execFileSync('getent', ['group', 'nogroup'], { encoding: 'utf8' }).split(':')[2]) };
  } catch {
    return { user: 'nobody', group: 'nobody', uid: id(['-u', 'nobody']), gid: id(['-g', 'nobody']) };
  }
}

function args(dir: string, port: number | 'PORT'): string[] {
  const who = runAs();
  const me = who ?? { user: os.userInfo().username, group: execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim() };
  return [
    '--file', `${dir}/rules.cf`,
    '--interface', '127.0.0.1',
    '--port', String(port),
    '--pidfile', `${dir}/postfwd-master.pid`,
    '--cache_proto', 'unix',
    '--cache_port', `${dir}/postfwd-cache.socket`,
    '--nodns', // the ruleset has no DNS checks; keep it from resolving anything
    '--norulelog', // no per-request log line (there is no syslog here; ours does not log per request either)
    '--noidlestats',
    '--user', me.user,
    '--group', me.group,
  ];
}

function version(): string {
  const r = spawnSync(BIN, ['-V'], { encoding: 'utf8' });
  return (r.stdout || r.stderr || 'unknown').trim().split('\n')[0] ?? 'unknown';
}

export const postfwdKind: ServerKind = {
  name: 'postfwd',
  slow: true,
  enforces: true,
  role: 'peer',
  unavailable: () => (existsSync(BIN) ? null : `${BIN} is not installed`),
  info: (spec) => ({
    name: 'postfwd',
    version: version(),
    does:
      `Per request: the policy child asks the cache daemon (unix socket) for the rate counters of the request's sasl_username, then walks the ruleset; ` +
      `the rule rate(sasl_username/${spec.limit}/${spec.windowSeconds}/…) at RCPT counts RCPT requests (recipients). Default request cache on (no hits: every request differs). ` +
      'Pre-forked children: one per connection.',
    config: `${rules(spec)}\npostfwd ${args('<tmp>', 'PORT').join(' ')}`,
  }),
  start: async (spec): Promise<RunningServer> => {
    const dir = tempDir('postfwd');
    writeFileSync(path.join(dir, 'rules.cf'), rules(spec));
    const who = runAs();
    // The cache daemon runs as that user and creates its socket in the temp dir.
    if (who) chownSync(dir, who.uid, who.gid);
    const port = await freePort();
    const pidFile = path.join(dir, 'postfwd-master.pid');
    // The launcher forks the master and exits 0.
    const launch = spawnSync(BIN, args(dir, port), { encoding: 'utf8', timeout: 20_000, cwd: dir });
    let master = 0;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      try {
        master = Number(readFileSync(pidFile, 'utf8').trim());
      } catch {
        /* not yet */
      }
      if (master > 0) break;
      await sleep(50);
    }
    const fail = async (why: string): Promise<never> => {
      if (master > 0 && isAlive(master)) await stopPids(processTree(master));
      removeDir(dir);
      throw new Error(`postfwd did not start: ${why}\n${launch.stdout ?? ''}${launch.stderr ?? ''}`);
    };
    if (!(master > 0)) return fail('no pid file');
    try {
      await waitForPort(port, 15_000, () => isAlive(master));
    } catch (e) {
      return fail((e as Error).message);
    }
    // rate() needs the cache daemon; wait for its socket.
    for (let i = 0; i < 200 && !existsSync(path.join(dir, 'postfwd-cache.socket')); i++) await sleep(50);
    if (!existsSync(path.join(dir, 'postfwd-cache.socket'))) return fail('the cache daemon did not create its socket');
    return {
      name: 'postfwd',
      port,
      pid: master,
      cpuSeconds: () => treeCpuSeconds(master),
      stop: async () => {
        const pids = isAlive(master) ? processTree(master) : [];
        await stopPids(pids, 5000);
        removeDir(dir);
      },
    };
  },
};
