// The milter's cost to Postfix: how many messages per second a real Postfix accepts
// with no milter, with fumidai's milter (`fumidai serve`, the product as shipped), and
// with Rspamd's milter (its proxy worker in milter mode, scanning itself), in one run on
// the same machine. Results: docs/performance.md, section "Milter cost".
//
// Load: Postfix's own smtp-source (N messages over S parallel SMTP sessions) into a
// Postfix instance from the test harness (test/integration/postfix/harness.ts), which
// relays everything to Postfix's smtp-sink. Measured: wall time of smtp-source (the
// message is accepted only after cleanup got the milter's end-of-message reply, so the
// milter's latency and CPU show up here), the milter process's CPU time per message,
// and the machine's busy CPU time per message. The queue is drained between runs.
//
// Fairness notes: smtp-source cannot authenticate, so Postfix fills {auth_authen} from
// milter_macro_defaults and every message reaches fumidai's full engine path (state
// store, all modules) as one sender ID. Rspamd runs its full default rule set without
// Redis; its DNS lookups go to a local responder that answers NXDOMAIN at once (a
// warm local resolver), so no lookup waits for a timeout.
//
// Usage (root; Debian packages postfix and rspamd):
//   node --import tsx bench/milter-cost.ts [--messages 1500] [--sessions 1,8] [--repeat 3]
//       [--size 2048] [--peers none,fumidai,rspamd] [--out FILE]
// Library: runMilterCost(options) / milterCostMarkdown(result) for bench/run.ts.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, machineBusySeconds, machineFacts, treeCpuSeconds, type MachineFacts } from './lib/proc.ts';
import { median, round } from './lib/stats.ts';
import { pidsOf, startPostfix, type PostfixInstance } from '../test/integration/postfix/harness.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FUMIDAI_BIN = path.join(HERE, '..', 'bin', 'fumidai.js');
const SMTP_SOURCE = '/usr/sbin/smtp-source';
const SMTP_SINK = '/usr/sbin/smtp-sink';
const RSPAMD = '/usr/bin/rspamd';
const SENDER = 'bench-user@example.jp';

export type PeerName = 'none' | 'fumidai' | 'rspamd';

export interface MilterCostOptions {
  readonly messages: number;
  readonly sessions: readonly number[];
  readonly repeat: number;
  readonly size: number;
  readonly peers: readonly PeerName[];
  readonly warmup: number;
}

export const DEFAULT_MILTER_COST: MilterCostOptions = {
  messages: 1500,
  sessions: [1, 8],
  repeat: 3,
  size: 2048,
  peers: ['none', 'fumidai', 'rspamd'],
  warmup: 200,
};

export interface MilterCostRow {
  readonly peer: PeerName;
  readonly sessions: number;
  /** Medians over the repeats. */
  readonly messagesPerSecond: number;
  /** Milter process CPU per message, ms (0 for none). */
  readonly milterCpuMs: number;
  /** CPU of the Postfix instance (all its daemons) per message, ms. */
  readonly postfixCpuMs: number;
  /** Whole-machine busy CPU per message, ms (Postfix, sink, milter, load generator; also anything else running). */
  readonly machineCpuMs: number;
  /** Throughput relative to no milter at the same sessions, e.g. 0.93. */
  readonly relative: number | null;
  readonly runs: readonly { readonly messagesPerSecond: number; readonly milterCpuMs: number; readonly postfixCpuMs: number; readonly machineCpuMs: number }[];
}

export interface MilterCostResult {
  readonly kind: 'milter-cost';
  readonly startedAt: string;
  readonly machine: MachineFacts;
  readonly versions: Readonly<Record<string, string>>;
  readonly options: MilterCostOptions;
  readonly rows: readonly MilterCostRow[];
  readonly notes: readonly string[];
}

function run(file: string, args: readonly string[], timeoutMs = 600_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

async function waitForPort(port: number, timeoutMs: number, what: string): Promise<void> {
  const net = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

function stopChild(child: ChildProcess | null): Promise<void> {
  if (child === null || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
    }, 5000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

// ---- the peers -----------------------------------------------------------------------

interface RunningMilter {
  readonly name: PeerName;
  /** smtpd_milters value, or "" for none. */
  readonly endpoint: string;
  /** Root pid of the milter's processes, or null. */
  readonly pid: number | null;
  stop(): Promise<void>;
}

async function startFumidai(dir: string): Promise<RunningMilter> {
  const port = await freePort();
  const config = path.join(dir, 'fumidai.json');
  writeFileSync(
    config,
    JSON.stringify({
      dataDir: path.join(dir, 'fumidai-data'),
      policy: { listeners: [{ listen: '127.0.0.1:0' }] },
      admin: { listen: null },
      milter: { listeners: [{ listen: `127.0.0.1:${port}` }] },
      // One sender sends everything: limits are for the policy door, not measured here.
    }),
  );
  const child = spawn(process.execPath, [FUMIDAI_BIN, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 30_000;
  while (!out.includes('fumidai: ready')) {
    if (child.exitCode !== null) throw new Error(`fumidai serve exited: ${out}`);
    if (Date.now() > deadline) throw new Error(`fumidai serve did not start: ${out}`);
    await sleep(50);
  }
  return { name: 'fumidai', endpoint: `inet:127.0.0.1:${port}`, pid: child.pid!, stop: () => stopChild(child) };
}

/** A DNS responder that answers every query NXDOMAIN at once (a warm local resolver). */
async function startNxdomainDns(): Promise<{ port: number; close(): void }> {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (q, rinfo) => {
    if (q.length < 12) return;
    // Question section ends after the name's zero byte plus QTYPE and QCLASS.
    let i = 12;
    while (i < q.length && q[i] !== 0) i += q[i]! + 1;
    const end = Math.min(q.length, i + 5);
    const r = Buffer.from(q.subarray(0, end));
    r[2] = 0x80 | (q[2]! & 0x01); // QR, RD copied
    r[3] = 0x80 | 3; // RA, NXDOMAIN
    r.writeUInt16BE(1, 4);
    r.writeUInt16BE(0, 6);
    r.writeUInt16BE(0, 8);
    r.writeUInt16BE(0, 10);
    sock.send(r, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
  return { port: sock.address().port, close: () => sock.close() };
}

async function startRspamd(dir: string): Promise<RunningMilter> {
  const port = await freePort();
  const dns = await startNxdomainDns();
  const conf = path.join(dir, 'rspamd');
  for (const d of ['local.d', 'db', 'run', 'log']) mkdirSync(path.join(conf, d), { recursive: true });
  const local = (name: string, text: string): void => writeFileSync(path.join(conf, 'local.d', name), text);
  local('worker-proxy.inc', `bind_socket = "127.0.0.1:${port}";\nmilter = yes;\ntimeout = 120s;\ncount = 1;\nupstream "local" { default = yes; self_scan = yes; }\n`);
  local('worker-normal.inc', 'enabled = false;\n');
  local('worker-controller.inc', 'enabled = false;\n');
  local('options.inc', `dns { nameserver = ["127.0.0.1:${dns.port}"]; timeout = 1s; retransmits = 1; }\n`);
  local('logging.inc', `type = "file";\nfilename = "${path.join(conf, 'log', 'rspamd.log')}";\nlevel = "error";\n`);
  const vars = { LOCAL_CONFDIR: conf, DBDIR: path.join(conf, 'db'), RUNDIR: path.join(conf, 'run'), LOGDIR: path.join(conf, 'log') };
  const args = ['-f', '-i', '-c', '/etc/rspamd/rspamd.conf', '-p', path.join(conf, 'run', 'rspamd.pid')];
  for (const [k, v] of Object.entries(vars)) args.push('--var', `${k}=${v}`);
  const child = spawn(RSPAMD, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    await waitForPort(port, 60_000, 'rspamd proxy');
  } catch (err) {
    await stopChild(child);
    dns.close();
    throw err;
  }
  return {
    name: 'rspamd',
    endpoint: `inet:127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      await stopChild(child);
      dns.close();
    },
  };
}

// ---- one measurement -------------------------------------------------------------------

async function drained(pf: PostfixInstance, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await pf.queue()).length > 0) {
    if (Date.now() > deadline) throw new Error('Postfix queue did not drain');
    await sleep(200);
  }
}

async function smtpSource(pf: PostfixInstance, messages: number, sessions: number, size: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  await run(SMTP_SOURCE, ['-s', String(sessions), '-m', String(messages), '-l', String(size), '-f', SENDER, '-t', 'rcpt@example.com', '-M', 'client.bench.invalid', `127.0.0.1:${pf.port}`]);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** CPU seconds of every process of a Postfix instance, including reaped children. */
function postfixCpuSeconds(pf: PostfixInstance): number {
  const pids = pidsOf(pf.configDir);
  const set = new Set(pids);
  let total = 0;
  for (const pid of pids) {
    let ppid = -1;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      continue;
    }
    if (!set.has(ppid)) total += treeCpuSeconds(pid);
  }
  return total;
}

async function measure(pf: PostfixInstance, milter: RunningMilter, o: MilterCostOptions, sessions: number): Promise<MilterCostRow['runs'][number]> {
  await smtpSource(pf, o.warmup, sessions, o.size);
  await drained(pf);
  const cpu0 = milter.pid === null ? 0 : treeCpuSeconds(milter.pid);
  const pf0 = postfixCpuSeconds(pf);
  const busy0 = machineBusySeconds();
  const seconds = await smtpSource(pf, o.messages, sessions, o.size);
  const cpu1 = milter.pid === null ? 0 : treeCpuSeconds(milter.pid);
  const busy1 = machineBusySeconds();
  // Postfix's CPU includes delivering the queue to the sink, so it is read after draining.
  await drained(pf);
  const pf1 = postfixCpuSeconds(pf);
  return {
    messagesPerSecond: o.messages / seconds,
    milterCpuMs: ((cpu1 - cpu0) * 1000) / o.messages,
    postfixCpuMs: ((pf1 - pf0) * 1000) / o.messages,
    machineCpuMs: ((busy1 - busy0) * 1000) / o.messages,
  };
}

async function versionOf(file: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(file, args, 10_000);
    return (stdout + stderr).trim().split('\n')[0] ?? '';
  } catch (err) {
    return `unavailable: ${(err as Error).message.split('\n')[0]}`;
  }
}

export async function runMilterCost(o: MilterCostOptions = DEFAULT_MILTER_COST, log: (s: string) => void = (s) => process.stderr.write(`${s}\n`)): Promise<MilterCostResult> {
  if (process.getuid?.() !== 0) throw new Error('milter-cost needs root (it runs its own Postfix instances)');
  for (const f of [SMTP_SOURCE, SMTP_SINK, '/usr/sbin/postfix']) if (!existsSync(f)) throw new Error(`${f} missing: sudo bash scripts/install-test-deps.sh`);
  const notes: string[] = [];
  let peers = [...o.peers];
  if (peers.includes('rspamd') && !existsSync(RSPAMD)) {
    notes.push('rspamd is not installed (sudo bash scripts/install-test-deps.sh); its rows are missing');
    peers = peers.filter((p) => p !== 'rspamd');
  }
  const startedAt = new Date().toISOString();
  const dir = mkdtempSync(path.join(tmpdir(), 'fumidai-milter-cost-'));
  const sinkPort = await freePort();
  const sink = spawn(SMTP_SINK, ['-u', 'postfix', `127.0.0.1:${sinkPort}`, '256'], { stdio: 'ignore' });
  const milters = new Map<PeerName, RunningMilter>();
  const instances = new Map<PeerName, PostfixInstance>();
  const runs = new Map<string, MilterCostRow['runs'][number][]>();
  try {
    await waitForPort(sinkPort, 10_000, 'smtp-sink');
    for (const p of peers) {
      log(`milter-cost: starting ${p}`);
      const m = p === 'none' ? { name: p, endpoint: '', pid: null, stop: async () => undefined } : p === 'fumidai' ? await startFumidai(dir) : await startRspamd(dir);
      milters.set(p, m);
      instances.set(
        p,
        await startPostfix({
          nextHop: { host: '127.0.0.1', port: sinkPort },
          milters: m.endpoint,
          extraMain: {
            smtpd_relay_restrictions: 'permit_mynetworks, reject',
            // smtp-source cannot authenticate; the milters see this login instead.
            milter_macro_defaults: `{auth_authen}=${SENDER}, {auth_type}=PLAIN`,
            milter_default_action: 'tempfail',
            default_process_limit: '100',
          },
        }),
      );
    }
    for (let r = 0; r < o.repeat; r++) {
      // Rotate the order so no peer always runs first (warm caches, thermal state).
      const order = peers.map((_, i) => peers[(i + r) % peers.length]!);
      for (const p of order) {
        for (const s of o.sessions) {
          const m = await measure(instances.get(p)!, milters.get(p)!, o, s);
          log(`milter-cost: round ${r + 1}/${o.repeat} ${p} sessions=${s}: ${m.messagesPerSecond.toFixed(0)} msg/s, milter ${m.milterCpuMs.toFixed(3)} ms CPU/msg`);
          const key = `${p}/${s}`;
          runs.set(key, [...(runs.get(key) ?? []), m]);
        }
      }
    }
    // A milter that tempfails or rejects would make the numbers meaningless: check the sink got mail.
    for (const [p, pf] of instances) {
      if (/milter-reject|milter.*(?:tempfail|Service unavailable)/i.test(pf.log())) notes.push(`${p}: Postfix logged milter rejections or tempfails; see its log`);
    }
  } finally {
    for (const pf of instances.values()) await pf.stop().catch(() => undefined);
    for (const m of milters.values()) await m.stop().catch(() => undefined);
    await stopChild(sink);
    rmSync(dir, { recursive: true, force: true });
  }
  const rows: MilterCostRow[] = [];
  for (const s of o.sessions) {
    const base = runs.get(`none/${s}`);
    const baseRate = base ? median(base.map((x) => x.messagesPerSecond)) : null;
    for (const p of peers) {
      const list = runs.get(`${p}/${s}`) ?? [];
      const rate = median(list.map((x) => x.messagesPerSecond));
      rows.push({
        peer: p,
        sessions: s,
        messagesPerSecond: round(rate, 1),
        milterCpuMs: round(median(list.map((x) => x.milterCpuMs)), 3),
        postfixCpuMs: round(median(list.map((x) => x.postfixCpuMs)), 3),
        machineCpuMs: round(median(list.map((x) => x.machineCpuMs)), 3),
        relative: baseRate === null ? null : round(rate / baseRate, 3),
        runs: list,
      });
    }
  }
  return {
    kind: 'milter-cost',
    startedAt,
    machine: machineFacts(),
    versions: {
      postfix: await versionOf('/usr/sbin/postconf', ['-d', '-h', 'mail_version']),
      rspamd: await versionOf(RSPAMD, ['--version']),
      node: process.version,
    },
    options: o,
    rows,
    notes,
  };
}

export function milterCostMarkdown(r: MilterCostResult): string {
  const lines = [
    `Postfix ${r.versions['postfix']}, ${r.versions['rspamd']}, Node ${r.versions['node']}; ${r.machine.cores}× ${r.machine.cpuModel}. ` +
      `${r.options.messages} messages of ${r.options.size} bytes per run, median of ${r.options.repeat} runs.`,
    '',
    '| milter | SMTP sessions | messages/s | vs no milter | milter CPU ms/msg | Postfix CPU ms/msg | machine CPU ms/msg |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const row of r.rows) {
    lines.push(
      `| ${row.peer} | ${row.sessions} | ${row.messagesPerSecond} | ${row.relative === null ? '' : `${(row.relative * 100).toFixed(0)}%`} | ${row.peer === 'none' ? '–' : row.milterCpuMs} | ${row.postfixCpuMs} | ${row.machineCpuMs} |`,
    );
  }
  for (const n of r.notes) lines.push('', `Note: ${n}`);
  return lines.join('\n');
}

function cliOptions(): MilterCostOptions & { out: string | null } {
  const { values } = parseArgs({
    options: {
      messages: { type: 'string', default: String(DEFAULT_MILTER_COST.messages) },
      sessions: { type: 'string', default: DEFAULT_MILTER_COST.sessions.join(',') },
      repeat: { type: 'string', default: String(DEFAULT_MILTER_COST.repeat) },
      size: { type: 'string', default: String(DEFAULT_MILTER_COST.size) },
      peers: { type: 'string', default: DEFAULT_MILTER_COST.peers.join(',') },
      warmup: { type: 'string', default: String(DEFAULT_MILTER_COST.warmup) },
      out: { type: 'string' },
    },
  });
  const peers = values.peers.split(',').map((p) => p.trim()) as PeerName[];
  for (const p of peers) if (!['none', 'fumidai', 'rspamd'].includes(p)) throw new Error(`unknown peer ${p}`);
  return {
    messages: Number(values.messages),
    sessions: values.sessions.split(',').map(Number),
    repeat: Number(values.repeat),
    size: Number(values.size),
    peers,
    warmup: Number(values.warmup),
    out: values.out ?? null,
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const o = cliOptions();
  const result = await runMilterCost(o);
  const out = o.out ?? path.join(HERE, 'results', `milter-cost-${result.startedAt.replace(/[:.]/g, '-')}.json`);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${milterCostMarkdown(result)}\n\nresults: ${out}\n`);
  process.exit(0);
}
