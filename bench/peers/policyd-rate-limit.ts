// Debian's policyd-rate-limit (Python, SQLite backend) as a benchmark peer.
// Runs in the foreground (it does not daemonize), TCP on a free loopback port, a temp
// YAML config, pid file and SQLite database in a temp dir, limited by sasl_username.
//
// It commits one SQLite transaction per request (default journal mode, synchronous=FULL),
// so on a disk it is bound by fsync. The `-tmpfs` variant puts the temp dir on /dev/shm:
// no durable writes, like our in-memory counters; its best case on this machine.
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitForPort } from '../lib/proc.ts';
import { childServer, removeDir, spawnLogged, tempDir, type LimitSpec, type ServerKind } from '../lib/server.ts';

const BIN = '/usr/bin/policyd-rate-limit';

function runAs(): { user: string; group: string } {
  // As root it drops privileges to `user`/`group` after creating its directories; staying
  // root keeps the temp dir simple. Otherwise it does not switch users at all.
  if (process.getuid?.() === 0) return { user: 'root', group: 'root' };
  const user = os.userInfo().username;
  let group = user;
  try {
    group = execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim();
  } catch {
    /* keep */
  }
  return { user, group };
}

function configYaml(dir: string, port: number | 'PORT', spec: LimitSpec): string {
  const { user, group } = runAs();
  return [
    '# Written by bench/peers/policyd-rate-limit.ts',
    'debug: False', // no per-request logging to stderr
    `user: "${user}"`,
    `group: "${group}"`,
    `pidfile: "${dir}/policyd-rate-limit.pid"`,
    'backend: 0', // SQLite
    'sqlite_config:',
    `  database: "${dir}/db.sqlite3"`,
    `SOCKET: ["127.0.0.1", ${port}]`,
    'limits:',
    `  - [${spec.limit}, ${spec.windowSeconds}]`,
    'limits_by_id: {}',
    'limit_by_sasl: True',
    'limit_by_sender: False',
    'limit_by_ip: False',
    'limited_networks: []',
    'success_action: "dunno"',
    'fail_action: "defer_if_permit Rate limit reach, retry later"',
    'db_error_action: "dunno"',
    'report: False',
    'delay_to_close: 300',
    '',
  ].join('\n');
}

function version(): string {
  try {
    return execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'policyd-rate-limit'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

const SHM = '/dev/shm';

function makeKind(tmpfs: boolean): ServerKind {
  const name = tmpfs ? 'policyd-rate-limit-tmpfs' : 'policyd-rate-limit';
  return {
  name,
  slow: true,
  enforces: true,
  role: tmpfs ? 'peer-variant' : 'peer',
  unavailable: () => (!existsSync(BIN) ? `${BIN} is not installed` : tmpfs && !existsSync(SHM) ? `${SHM} does not exist` : null),
  info: (spec) => ({
    name,
    version: version(),
    does:
      `Per RCPT request: SELECT COUNT(*) of the user's rows in the window, then INSERT a row and COMMIT (SQLite, default journal mode, ` +
      `${tmpfs ? 'database on tmpfs /dev/shm: commits do not reach a disk' : "database in a temp dir on the machine's disk: every commit is fsynced"}); ` +
      `limit ${spec.limit} per ${spec.windowSeconds} s counts RCPT requests (recipients). ` +
      'Other protocol states (END-OF-MESSAGE) are answered dunno after an empty transaction.',
    config: configYaml(tmpfs ? '/dev/shm/<tmp>' : '<tmp>', 'PORT', spec),
  }),
  start: async (spec) => {
    const dir = tempDir(name, tmpfs ? SHM : undefined);
    const port = await freePort();
    const cfg = path.join(dir, 'policyd-rate-limit.yaml');
    writeFileSync(cfg, configYaml(dir, port, spec));
    const { child, output } = spawnLogged(BIN, ['--file', cfg], dir);
    try {
      await waitForPort(port, 15_000, () => child.exitCode === null);
    } catch (e) {
      child.kill('SIGKILL');
      removeDir(dir);
      throw new Error(`${name} did not start: ${(e as Error).message}\n${output()}`);
    }
    return childServer(name, port, child, () => removeDir(dir));
  },
  };
}

export const policydRateLimitKind: ServerKind = makeKind(false);
export const policydRateLimitTmpfsKind: ServerKind = makeKind(true);
