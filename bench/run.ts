// npm run bench — the policy server benchmark in one go.
//
// For each server (ours, the do-nothing ceiling, policyd-rate-limit, postfwd) and each
// number of persistent connections (1, 8, 32) it runs the same load generator
// (bench/policy-load.ts, in its own process) against the server (in its own process):
// requests/s, p50/p90/p99/max latency, server CPU time per request (utime+stime from
// /proc around the measured phase), generator CPU time per request. Repeats the whole
// round (default 3×, server order rotated) and reports medians. Before that, each
// rate-limiting server is checked to really enforce a small limit.
//
// Options: --repeat N  --connections 1,8,32  --duration S (fast servers)  --peer-duration S
//          --warmup S  --peer-warmup S  --users N  --servers a,b,c  --limit N  --no-sanity
//          --no-memory (skip the memory benchmark)  --memory-ids N
//          --quiet-threshold CORES (0.25)  --quiet-wait S (60): the machine is shared; before each
//          measurement wait up to S seconds until other processes use < CORES, and leave runs
//          during which they used more out of the medians (when quiet runs exist).
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { doNothingKind } from './do-nothing-responder.ts';
import { fumidaiKind } from './fumidai-server.ts';
import { machineBusySeconds, machineFacts, type MachineFacts } from './lib/proc.ts';
import { installJapanFilter } from './lib/jp-filter.ts';
import { checkLimitEnforced, type SanityResult } from './lib/sanity.ts';
import type { LimitSpec, RunningServer, ServerInfo, ServerKind } from './lib/server.ts';
import { median, round } from './lib/stats.ts';
import type { MemoryResult } from './memory.ts';
import { policydRateLimitKind, policydRateLimitTmpfsKind } from './peers/policyd-rate-limit.ts';
import { postfwdKind } from './peers/postfwd.ts';
import { DEFAULT_LOAD, type ChildMessage, type LoadOptions, type LoadResult, type ParentMessage } from './policy-load.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ALL: readonly ServerKind[] = [fumidaiKind, doNothingKind, policydRateLimitKind, policydRateLimitTmpfsKind, postfwdKind];

interface Options {
  readonly repeat: number;
  readonly connections: readonly number[];
  readonly durationMs: number;
  readonly peerDurationMs: number;
  readonly warmupMs: number;
  readonly peerWarmupMs: number;
  readonly users: number;
  readonly servers: readonly string[];
  readonly limit: number;
  readonly sanity: boolean;
  readonly memory: boolean;
  readonly memoryIds: number;
  readonly quietThreshold: number;
  readonly quietWaitMs: number;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      repeat: { type: 'string', default: '3' },
      connections: { type: 'string', default: '1,8,32' },
      duration: { type: 'string', default: '5' },
      'peer-duration': { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      'peer-warmup': { type: 'string', default: '1' },
      users: { type: 'string', default: '10000' },
      servers: { type: 'string', default: ALL.map((k) => k.name).join(',') },
      limit: { type: 'string', default: '50000' },
      'no-sanity': { type: 'boolean', default: false },
      'no-memory': { type: 'boolean', default: false },
      'memory-ids': { type: 'string', default: '1000000' },
      'quiet-threshold': { type: 'string', default: '0.25' },
      'quiet-wait': { type: 'string', default: '60' },
    },
  });
  const num = (s: string, name: string, min: number, max: number): number => {
    const n = Number(s);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be between ${min} and ${max}`);
    return n;
  };
  const servers = values.servers.split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of servers) if (!ALL.some((k) => k.name === s)) throw new Error(`unknown server ${s}; known: ${ALL.map((k) => k.name).join(', ')}`);
  return {
    repeat: num(values.repeat, 'repeat', 1, 20),
    connections: values.connections.split(',').map((c) => num(c, 'connections', 1, 512)),
    durationMs: num(values.duration, 'duration', 0.5, 120) * 1000,
    peerDurationMs: num(values['peer-duration'], 'peer-duration', 0.5, 120) * 1000,
    warmupMs: num(values.warmup, 'warmup', 0, 60) * 1000,
    peerWarmupMs: num(values['peer-warmup'], 'peer-warmup', 0, 60) * 1000,
    users: num(values.users, 'users', 1, 10_000_000),
    servers,
    limit: num(values.limit, 'limit', 1, 1e12),
    sanity: !values['no-sanity'],
    memory: !values['no-memory'],
    memoryIds: num(values['memory-ids'], 'memory-ids', 1000, 20_000_000),
    quietThreshold: num(values['quiet-threshold'], 'quiet-threshold', 0, 64),
    quietWaitMs: num(values['quiet-wait'], 'quiet-wait', 0, 3600) * 1000,
  };
}

const log = (s: string): void => void process.stderr.write(s + '\n');

interface RunRecord {
  readonly repeat: number;
  readonly server: string;
  readonly connections: number;
  readonly load: LoadResult;
  readonly serverCpuSeconds: number;
  readonly serverCpuUsPerRequest: number;
  /** Average cores busy in the server during the measured phase. */
  readonly serverCores: number;
  readonly generatorCpuUsPerRequest: number;
  readonly generatorCores: number;
  /** Cores busy with anything else on the machine during the measured phase (noise indicator). */
  readonly otherCores: number;
  /** otherCores above the quiet threshold: the run is kept but left out of the medians if quiet runs exist. */
  readonly disturbed: boolean;
  /** Load from others just before the run, and how long we waited for the machine to get quiet. */
  readonly loadBefore: number;
  readonly waitedForQuietMs: number;
}

/** What is running right now, so that SIGINT/SIGTERM can stop it (no orphaned servers). */
const live: { server: RunningServer | null; generator: ChildProcess | null } = { server: null, generator: null };

function stopOnSignal(): void {
  let stopping = false;
  const handler = (sig: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log(`bench: ${sig}: stopping`);
    live.generator?.kill('SIGKILL');
    const srv = live.server;
    void (srv ? srv.stop() : Promise.resolve()).finally(() => process.exit(130));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

/** Cores busy on the machine over `ms` while none of our processes is working. */
async function idleMachineLoad(ms: number): Promise<number> {
  const b0 = machineBusySeconds();
  await new Promise((r) => setTimeout(r, ms));
  return (machineBusySeconds() - b0) / (ms / 1000);
}

/**
 * The machine is shared: before each measurement wait (bounded) until something else
 * uses less than `threshold` cores. Returns the last load seen and how long we waited.
 */
async function waitForQuiet(threshold: number, maxWaitMs: number): Promise<{ load: number; waitedMs: number }> {
  const t0 = Date.now();
  let load = await idleMachineLoad(500);
  for (let i = 0; i < 1000 && load > threshold && Date.now() - t0 < maxWaitMs; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    load = await idleMachineLoad(500);
  }
  return { load: round(load, 3), waitedMs: Date.now() - t0 };
}

/** Runs the load generator in a child process; reads the server's CPU around the measured phase. */
function measure(server: RunningServer, opts: LoadOptions): Promise<{ load: LoadResult; cpu: number; machineBusy: number }> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(HERE, 'policy-load.ts'), ['--child'], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    live.generator = child;
    let cpu0 = NaN;
    let cpu1 = NaN;
    let busy0 = NaN;
    let busy1 = NaN;
    let settled = false;
    const limitMs = opts.warmupMs + opts.durationMs + 90_000;
    const timer = setTimeout(() => finish(new Error(`load generator did not finish within ${limitMs} ms`)), limitMs);
    const finish = (e: Error | null, load?: LoadResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (live.generator === child) live.generator = null;
      if (e) reject(e);
      else resolve({ load: load!, cpu: cpu1 - cpu0, machineBusy: busy1 - busy0 });
    };
    const send = (m: ParentMessage): void => void child.send(m);
    child.on('message', (raw: unknown) => {
      const m = raw as ChildMessage;
      if (m.type === 'warmed') {
        cpu0 = server.cpuSeconds();
        busy0 = machineBusySeconds();
        send({ type: 'continue' });
      } else if (m.type === 'measured') {
        busy1 = machineBusySeconds();
        cpu1 = server.cpuSeconds();
        send({ type: 'continue' });
      } else if (m.type === 'result') {
        finish(null, m.result);
      } else if (m.type === 'error') {
        finish(new Error(`load generator: ${m.message}`));
      }
    });
    child.on('exit', (code) => finish(new Error(`load generator exited (${code}) without a result`)));
    child.on('error', (e) => finish(e));
    send({ type: 'start', opts });
  });
}

interface SummaryRow {
  readonly server: string;
  readonly connections: number;
  readonly runs: number;
  /** Runs the medians are over (the undisturbed ones, or all if none was undisturbed). */
  readonly usedRuns: number;
  readonly rps: number;
  readonly rpsMin: number;
  readonly rpsMax: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly serverCpuUsPerRequest: number;
  readonly serverCores: number;
  readonly generatorCpuUsPerRequest: number;
  readonly otherCores: number;
  readonly allowedShare: number;
  readonly errors: number;
  readonly distinctUsers: number;
  readonly requests: number;
}

function summarize(runs: readonly RunRecord[], servers: readonly string[], conns: readonly number[]): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const s of servers) {
    for (const c of conns) {
      const all = runs.filter((r) => r.server === s && r.connections === c);
      if (all.length === 0) continue;
      const quiet = all.filter((r) => !r.disturbed);
      const rs = quiet.length > 0 ? quiet : all;
      const m = (f: (r: RunRecord) => number): number => median(rs.map(f));
      const allowed = rs.reduce((a, r) => a + (r.load.actions['DUNNO'] ?? 0) + (r.load.actions['OK'] ?? 0), 0);
      const total = rs.reduce((a, r) => a + r.load.requests, 0);
      rows.push({
        server: s,
        connections: c,
        runs: all.length,
        usedRuns: rs.length,
        rps: round(m((r) => r.load.rps), 0),
        rpsMin: round(Math.min(...rs.map((r) => r.load.rps)), 0),
        rpsMax: round(Math.max(...rs.map((r) => r.load.rps)), 0),
        p50: m((r) => r.load.latencyMs.p50),
        p90: m((r) => r.load.latencyMs.p90),
        p99: m((r) => r.load.latencyMs.p99),
        max: Math.max(...rs.map((r) => r.load.latencyMs.max)),
        serverCpuUsPerRequest: round(m((r) => r.serverCpuUsPerRequest), 1),
        serverCores: round(m((r) => r.serverCores), 2),
        generatorCpuUsPerRequest: round(m((r) => r.generatorCpuUsPerRequest), 1),
        otherCores: round(m((r) => r.otherCores), 2),
        allowedShare: total ? allowed / total : NaN,
        errors: rs.reduce((a, r) => a + r.load.errors, 0),
        distinctUsers: m((r) => r.load.distinctUsers),
        requests: total,
      });
    }
  }
  return rows;
}

interface Targets {
  readonly connections: number;
  readonly oursVsCeiling: number | null;
  readonly oursP99Ms: number | null;
  /** The faster peer at these connections, peers as deployed by default. */
  readonly fasterPeer: string | null;
  readonly oursVsFasterPeer: number | null;
  /** The same including peer variants tuned beyond their defaults (e.g. SQLite on tmpfs). */
  readonly fasterPeerInclVariants: string | null;
  readonly oursVsFasterPeerInclVariants: number | null;
  /** Against the best peer result (variants included) at any connection count. */
  readonly oursVsBestPeerAnyConns: number | null;
  readonly lines: readonly string[];
}

type Role = ServerKind['role'];

function targets(rows: readonly SummaryRow[], conns: readonly number[], roles: Readonly<Record<string, Role>>): Targets {
  const c = conns.includes(32) ? 32 : Math.max(...conns);
  const atC = rows.filter((r) => r.connections === c);
  const byRole = (rs: readonly SummaryRow[], ...want: Role[]): SummaryRow[] =>
    rs.filter((r) => want.includes(roles[r.server] ?? 'peer')).sort((a, b) => b.rps - a.rps);
  const ours = byRole(atC, 'ours')[0];
  const ceiling = byRole(atC, 'ceiling')[0];
  const faster = byRole(atC, 'peer')[0];
  const fasterAll = byRole(atC, 'peer', 'peer-variant')[0];
  const bestAny = byRole(rows, 'peer', 'peer-variant')[0];
  const ratio = (x: SummaryRow | undefined): number | null => (ours && x ? ours.rps / x.rps : null);
  const pct = (x: number): string => `${round(x * 100, 0)}%`;
  const ok = (b: boolean): string => (b ? 'met' : 'NOT met');
  const lines: string[] = [];
  const vsCeiling = ratio(ceiling);
  if (!ours) lines.push(`- fumidai was not measured (${fumidaiKind.unavailable() ?? 'see the log'}); targets cannot be judged.`);
  else {
    if (vsCeiling !== null) lines.push(`- Throughput vs the do-nothing responder at ${c} connections: ${pct(vsCeiling)} (target ≥ 50%: ${ok(vsCeiling >= 0.5)}).`);
    lines.push(`- p99 latency at ${c} connections: ${ours.p99} ms (target < 5 ms: ${ok(ours.p99 < 5)}).`);
    for (const [label, peer] of [
      ['the faster peer as deployed by default', faster],
      ['the faster peer including tuned variants', fasterAll],
    ] as const) {
      const r = ratio(peer);
      if (r !== null && peer) lines.push(`- vs ${label} at ${c} connections (${peer.server}, ${peer.rps} req/s): ${round(r, 1)}× (target ≥ 5×: ${ok(r >= 5)}).`);
    }
    const rb = ratio(bestAny);
    if (rb !== null && bestAny) lines.push(`- vs the best peer result at any connection count (${bestAny.server} at ${bestAny.connections}, ${bestAny.rps} req/s): ${round(rb, 1)}×.`);
  }
  const r2 = (x: number | null): number | null => (x === null ? null : round(x, 2));
  return {
    connections: c,
    oursVsCeiling: r2(vsCeiling),
    oursP99Ms: ours?.p99 ?? null,
    fasterPeer: faster?.server ?? null,
    oursVsFasterPeer: r2(ratio(faster)),
    fasterPeerInclVariants: fasterAll?.server ?? null,
    oursVsFasterPeerInclVariants: r2(ratio(fasterAll)),
    oursVsBestPeerAnyConns: r2(ratio(bestAny)),
    lines,
  };
}

function table(rows: readonly SummaryRow[]): string {
  const ceilingAt = (c: number): number | undefined => rows.find((r) => r.server === 'do-nothing' && r.connections === c)?.rps;
  const out = [
    '| Server | Conns | runs used | req/s (median) | req/s min–max | vs ceiling | p50 ms | p90 ms | p99 ms | max ms | server CPU µs/req | server cores | generator CPU µs/req | other load (cores) | allowed | errors | distinct IDs/run |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const ceil = ceilingAt(r.connections);
    out.push(
      `| ${r.server} | ${r.connections} | ${r.usedRuns}/${r.runs} | ${r.rps.toLocaleString('en-US')} | ${r.rpsMin.toLocaleString('en-US')}–${r.rpsMax.toLocaleString('en-US')} | ` +
        `${ceil ? `${round((r.rps / ceil) * 100, 0)}%` : '–'} | ${r.p50} | ${r.p90} | ${r.p99} | ${r.max} | ${r.serverCpuUsPerRequest} | ${r.serverCores} | ` +
        `${r.generatorCpuUsPerRequest} | ${r.otherCores} | ${round(r.allowedShare * 100, 2)}% | ${r.errors} | ${r.distinctUsers.toLocaleString('en-US')} |`,
    );
  }
  return out.join('\n');
}

function memoryBench(ids: number): Promise<MemoryResult | { status: 'error'; reason: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', path.join(HERE, 'memory.ts'), '--json', '--ids', String(ids)],
      { timeout: 300_000, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err) return resolve({ status: 'error', reason: `${err.message.split('\n')[0]} ${stderr.trim().slice(-500)}` });
        try {
          resolve(JSON.parse(stdout) as MemoryResult);
        } catch (e) {
          resolve({ status: 'error', reason: `unreadable output: ${(e as Error).message}` });
        }
      },
    );
  });
}

function memoryLines(m: MemoryResult | { status: 'error'; reason: string } | null): string[] {
  if (m === null) return [];
  if (m.status !== 'measured') return [`- Memory per tracked ID: not measured (${m.reason}).`];
  return m.scenarios.map(
    (s) => `- Memory, ${s.tracked.toLocaleString('en-US')} tracked IDs, ${s.name}: ${s.bytesPerId} bytes per ID (target < 300: ${s.bytesPerId < 300 ? 'met' : 'NOT met'}).`,
  );
}

function machineLine(m: MachineFacts): string {
  return `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.os}, kernel ${m.kernel}, Node ${m.node}; load average at start ${m.loadAvgAtStart.join(' / ')}`;
}

async function main(): Promise<void> {
  const o = options();
  stopOnSignal();
  const geoWarning = await installJapanFilter();
  if (geoWarning) log(`warning: ${geoWarning}`);
  const startedAt = new Date();
  const machine = machineFacts();
  log(`machine: ${machineLine(machine)}`);
  const spec: LimitSpec = { limit: o.limit, windowSeconds: 3600 };
  const kinds = ALL.filter((k) => o.servers.includes(k.name));
  const skipped: Record<string, string> = {};
  const active: ServerKind[] = [];
  for (const k of kinds) {
    const why = k.unavailable();
    if (why) {
      skipped[k.name] = why;
      log(`skip ${k.name}: ${why}`);
    } else active.push(k);
  }
  const infos: Record<string, ServerInfo> = {};
  for (const k of active) infos[k.name] = k.info(spec);

  // 1. Does each rate limiter really enforce a limit? (limit 3 per hour, one user, 4 messages)
  const sanity: Record<string, SanityResult | { error: string }> = {};
  if (o.sanity) {
    for (const k of active.filter((x) => x.enforces)) {
      let srv: RunningServer | null = null;
      try {
        srv = await k.start({ limit: 3, windowSeconds: 3600 });
        live.server = srv;
        const r = await checkLimitEnforced(srv.port, 3);
        sanity[k.name] = r;
        log(`sanity ${k.name} (limit 3/h): ${r.enforced ? 'ENFORCED' : 'NOT ENFORCED'}\n  ${r.steps.join('\n  ')}`);
      } catch (e) {
        sanity[k.name] = { error: (e as Error).message };
        log(`sanity ${k.name}: error: ${(e as Error).message}`);
      } finally {
        await srv?.stop();
        live.server = null;
      }
    }
  }

  // 2. The benchmark rounds.
  const runs: RunRecord[] = [];
  const failures: { repeat: number; server: string; connections?: number; error: string }[] = [];
  for (let rep = 1; rep <= o.repeat; rep++) {
    const order = active.map((_, i) => active[(i + rep - 1) % active.length]!);
    for (const k of order) {
      let srv: RunningServer | null = null;
      try {
        srv = await k.start(spec);
        live.server = srv;
        for (const c of o.connections) {
          const load: LoadOptions = {
            ...DEFAULT_LOAD,
            port: srv.port,
            connections: c,
            users: o.users,
            warmupMs: k.slow ? o.peerWarmupMs : o.warmupMs,
            durationMs: k.slow ? o.peerDurationMs : o.durationMs,
          };
          try {
            const quiet = await waitForQuiet(o.quietThreshold, o.quietWaitMs);
            if (quiet.load > o.quietThreshold) log(`  (machine still busy: ${quiet.load} cores used by others after ${quiet.waitedMs} ms; measuring anyway)`);
            const { load: res, cpu, machineBusy } = await measure(srv, load);
            const otherCores = round(Math.max(0, machineBusy - cpu - res.generatorCpuSeconds) / res.seconds, 3);
            const rec: RunRecord = {
              repeat: rep,
              server: k.name,
              connections: c,
              load: res,
              serverCpuSeconds: round(cpu, 3),
              serverCpuUsPerRequest: round((cpu / Math.max(1, res.requests)) * 1e6, 2),
              serverCores: round(cpu / res.seconds, 3),
              generatorCpuUsPerRequest: round((res.generatorCpuSeconds / Math.max(1, res.requests)) * 1e6, 2),
              generatorCores: round(res.generatorCpuSeconds / res.seconds, 3),
              otherCores,
              disturbed: otherCores > o.quietThreshold,
              loadBefore: quiet.load,
              waitedForQuietMs: quiet.waitedMs,
            };
            runs.push(rec);
            log(
              `run ${rep}/${o.repeat} ${k.name.padEnd(18)} c=${String(c).padStart(2)}: ${String(res.rps).padStart(9)} req/s ` +
                `p50 ${res.latencyMs.p50} p99 ${res.latencyMs.p99} ms, server ${rec.serverCpuUsPerRequest} µs/req (${rec.serverCores} cores), ` +
                `gen ${rec.generatorCpuUsPerRequest} µs/req (${rec.generatorCores} cores), other ${rec.otherCores} cores${rec.disturbed ? ' DISTURBED' : ''}, errors ${res.errors}, actions ${JSON.stringify(res.actions)}`,
            );
          } catch (e) {
            failures.push({ repeat: rep, server: k.name, connections: c, error: (e as Error).message });
            log(`run ${rep} ${k.name} c=${c}: FAILED: ${(e as Error).message}`);
          }
        }
      } catch (e) {
        failures.push({ repeat: rep, server: k.name, error: (e as Error).message });
        log(`run ${rep} ${k.name}: could not start: ${(e as Error).message}`);
      } finally {
        await srv?.stop();
        live.server = null;
      }
    }
  }

  // 3. Memory per tracked ID (own process, --expose-gc).
  let memory: MemoryResult | { status: 'error'; reason: string } | null = null;
  if (o.memory) {
    memory = await memoryBench(o.memoryIds);
    if (memory.status === 'measured') for (const sc of memory.scenarios) log(`memory ${sc.name}: ${sc.bytesPerId} bytes per ID (${sc.tracked} IDs)`);
    else log(`memory: ${memory.reason}`);
  }

  const rows = summarize(runs, active.map((k) => k.name), o.connections);
  const t = targets(rows, o.connections, Object.fromEntries(active.map((k) => [k.name, k.role])));
  const finishedAt = new Date();
  const md = [
    `## Policy server benchmark (${startedAt.toISOString()})`,
    '',
    `Machine: ${machineLine(machine)}.`,
    `Load: ${o.users.toLocaleString('en-US')} sasl_usernames, ${DEFAULT_LOAD.rcptPerMessage} RCPT + 1 END-OF-MESSAGE request per message, ` +
      `${o.repeat} round(s); ours and the ceiling ${o.warmupMs / 1000} s warm-up + ${o.durationMs / 1000} s measured, peers ${o.peerWarmupMs / 1000} s + ${o.peerDurationMs / 1000} s; ` +
      `limit ${o.limit.toLocaleString('en-US')} per hour per sasl_username. Medians over the rounds in which other processes used ≤ ${o.quietThreshold} cores ("runs used"; all rounds if none was that quiet).`,
    '',
    table(rows),
    '',
    ...t.lines,
    ...Object.entries(skipped).map(([n, why]) => `- ${n} skipped: ${why}.`),
    ...failures.map((f) => `- FAILED: round ${f.repeat} ${f.server}${f.connections ? ` c=${f.connections}` : ''}: ${f.error.split('\n')[0]}`),
    ...Object.entries(sanity).map(([n, r]) => `- Limit check (3/hour) ${n}: ${'error' in r ? `error: ${r.error.split('\n')[0]}` : r.enforced ? 'enforced' : 'NOT enforced'}.`),
    ...memoryLines(memory),
    '',
  ].join('\n');
  process.stdout.write(md + '\n');

  const dir = path.join(HERE, 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      { startedAt, finishedAt, argv: process.argv.slice(2), machine, options: o, load: { ...DEFAULT_LOAD, users: o.users }, servers: infos, skipped, sanity, summary: rows, targets: t, memory, failures, runs },
      null,
      2,
    ) + '\n',
  );
  log(`results: ${path.relative(process.cwd(), file)}`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
