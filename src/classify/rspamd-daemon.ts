import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// A private Rspamd for tests and the classifier benchmark: Debian's rspamd binary with a
// temporary config dir, its normal and controller workers on loopback ports, no system
// service. Bayes statistics go to Redis (127.0.0.1:6379) in a database number of its own
// that must be empty at start and is flushed at stop. Modules that would reach the
// network (DNS blocklists, fuzzy storage, map downloads) are switched off, and DNS goes
// to a loopback port where nothing answers, so nothing leaves the machine.

export const RSPAMD_BIN = '/usr/bin/rspamd';

const NETWORK_MODULES = [
  'fuzzy_check', 'rbl', 'surbl', 'asn', 'spf', 'dkim', 'dmarc', 'arc', 'phishing', 'neural', 'multimap', 'maillist',
  'mx_check', 'dcc', 'greylist', 'ratelimit', 'replies', 'reputation', 'history_redis', 'external_services', 'antivirus',
  'clickhouse', 'elastic', 'metadata_exporter', 'dkim_signing', 'url_redirector', 'p0f', 'spamtrap', 'rspamd_update',
  'whitelist', 'bimi', 'emails',
];

export interface RspamdDaemon {
  readonly normalUrl: string;
  readonly controllerUrl: string;
  readonly redisDb: number;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    import('node:net').then(({ createServer }) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => resolve(port));
      });
    }, reject);
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function redisSelectAndCount(db: number): Promise<number> {
  // MULTI-less: SELECT and DBSIZE on one connection, pipelined.
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: 6379 });
    let buf = '';
    s.setTimeout(5000, () => s.destroy(new Error('redis: timeout')));
    s.on('data', (d) => {
      buf += d.toString('utf8');
      const m = /^\+OK\r\n:(\d+)\r\n$/.exec(buf);
      if (m) {
        s.end();
        resolve(Number(m[1]));
      } else if (buf.startsWith('-')) {
        s.end();
        reject(new Error(`redis: ${buf.trim()}`));
      }
    });
    s.on('error', reject);
    s.write(`*2\r\n$6\r\nSELECT\r\n$${String(db).length}\r\n${db}\r\n*1\r\n$6\r\nDBSIZE\r\n`);
  });
}

async function redisFlush(db: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: 6379 });
    let buf = '';
    s.setTimeout(5000, () => s.destroy(new Error('redis: timeout')));
    s.on('data', (d) => {
      buf += d.toString('utf8');
      if (buf.split('\r\n').length >= 3) {
        s.end();
        resolve();
      }
    });
    s.on('error', reject);
    s.write(`*2\r\n$6\r\nSELECT\r\n$${String(db).length}\r\n${db}\r\n*1\r\n$7\r\nFLUSHDB\r\n`);
  });
}

/** Starts Rspamd; resolves when both workers accept connections (it compiles its rules first: ~10 s). */
export async function startRspamd(opts: { readonly dbCandidates?: readonly number[]; readonly startTimeoutMs?: number } = {}): Promise<RspamdDaemon> {
  let redisDb = -1;
  for (const db of opts.dbCandidates ?? [13, 14, 15, 12, 11]) {
    if ((await redisSelectAndCount(db)) === 0) {
      redisDb = db;
      break;
    }
  }
  if (redisDb < 0) throw new Error('rspamd: no empty Redis database among the candidates (refusing to share one)');
  const dir = mkdtempSync(join(tmpdir(), 'fumidai-rspamd-'));
  for (const d of ['local.d', 'override.d', 'run', 'db', 'log']) mkdirSync(join(dir, d));
  const [normal, controller] = [await freePort(), await freePort()];
  writeFileSync(
    join(dir, 'rspamd.conf'),
    `.include "$CONFDIR/common.conf"
options {
  pidfile = "$RUNDIR/rspamd.pid";
  .include "$CONFDIR/options.inc"
  dns { nameserver = ["127.0.0.1:1"]; timeout = 0.1s; retransmits = 1; }
  local_addrs = ["127.0.0.0/8", "::1"];
}
logging { type = "file"; filename = "$LOGDIR/rspamd.log"; level = "warning"; }
worker "normal" { bind_socket = "127.0.0.1:${normal}"; count = 1; .include "$CONFDIR/worker-normal.inc" }
worker "controller" { bind_socket = "127.0.0.1:${controller}"; count = 1; .include "$CONFDIR/worker-controller.inc" }
`,
  );
  // Bayes as Debian ships it (OSB tokenizer, min_learns 200), statistics in our Redis db.
  writeFileSync(join(dir, 'local.d/classifier-bayes.conf'), `servers = "127.0.0.1:6379";\ndatabase = "${redisDb}";\nautolearn = false;\n`);
  for (const m of NETWORK_MODULES) writeFileSync(join(dir, `local.d/${m}.conf`), 'enabled = false;\n');
  const vars = { CONFDIR: '/etc/rspamd', LOCAL_CONFDIR: dir, RUNDIR: join(dir, 'run'), DBDIR: join(dir, 'db'), LOGDIR: join(dir, 'log') };
  const child: ChildProcess = spawn(
    RSPAMD_BIN,
    ['-f', '-i', '-c', join(dir, 'rspamd.conf'), '-u', 'root', '-g', 'root', ...Object.entries(vars).map(([k, v]) => `--var=${k}=${v}`)],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  child.once('exit', () => (exited = true));
  const cleanup = async (): Promise<void> => {
    if (!exited) {
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    }
    await redisFlush(redisDb).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  while (!((await portOpen(normal)) && (await portOpen(controller)))) {
    if (exited || Date.now() > deadline) {
      let log = '';
      try {
        log = readFileSync(join(dir, 'log/rspamd.log'), 'utf8').slice(-2000);
      } catch {
        /* none */
      }
      await cleanup();
      throw new Error(`rspamd did not start: ${stderr.slice(-1000)} ${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { normalUrl: `http://127.0.0.1:${normal}`, controllerUrl: `http://127.0.0.1:${controller}`, redisDb, stop: cleanup };
}
