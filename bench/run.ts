// bench/run.ts (`npm run bench -- run`, and part of `npm run bench`) — the policy server benchmark in one go.
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
import { machineBusySeconds, machineFacts } from './lib/proc.ts';
import { installJapanFilter } from './lib/jp-filter.ts';
import { checkLimitEnforced, type SanityResult } from './lib/sanity.ts';
import type { LimitSpec, RunningServer, ServerKind } from './lib/server.ts';
import { machineLine, markdown, summarize, targets, type Failure, type MemoryOutcome, type RecordedOptions, type ResultFile, type RunRecord, type ServerEntry } from './lib/report.ts';
import { round } from './lib/stats.ts';
import type { MemoryResult } from './memory.ts';
import { policydRateLimitKind, policydRateLimitTmpfsKind } from './peers/policyd-rate-limit.ts';
import { postfwdKind } from './peers/postfwd.ts';
import { DEFAULT_LOAD, type ChildMessage, type LoadOptions, type LoadResult, type ParentMessage } from './policy-load.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ALL: readonly ServerKind[] = [fumidaiKind, doNothingKind, policydRateLimitKind, policydRateLimitTmpfsKind, postfwdKind];

interface Options extends RecordedOptions {
  readonly servers: readonly string[];
  readonly sanity: boolean;
  readonly memory: boolean;
  readonly memoryIds: number;
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

function memoryBench(ids: number): Promise<MemoryOutcome> {
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
  const infos: Record<string, ServerEntry> = {};
  for (const k of active) infos[k.name] = { ...k.info(spec), role: k.role };

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
  const failures: Failure[] = [];
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
  let memory: MemoryOutcome | null = null;
  if (o.memory) {
    memory = await memoryBench(o.memoryIds);
    if (memory.status === 'measured') for (const sc of memory.scenarios) log(`memory ${sc.name}: ${sc.bytesPerId} bytes per ID (${sc.tracked} IDs)`);
    else log(`memory: ${memory.reason}`);
  }

  const rows = summarize(runs, active.map((k) => k.name), o.connections);
  const t = targets(rows, o.connections, Object.fromEntries(active.map((k) => [k.name, k.role])));
  const result: ResultFile = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    argv: process.argv.slice(2),
    machine,
    options: o,
    load: { ...DEFAULT_LOAD, users: o.users },
    servers: infos,
    skipped,
    sanity,
    summary: rows,
    targets: t,
    memory,
    failures,
    runs,
  };
  process.stdout.write(markdown(result) + '\n');

  const dir = path.join(HERE, 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  log(`results: ${path.relative(process.cwd(), file)}`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
