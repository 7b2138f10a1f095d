// node --import tsx bench/cluster.ts — the distributed backend under load.
//
// In one run, with the same load generator as bench/run.ts (bench/policy-load.ts, each
// generator in its own process):
//   1. embedded backend, one node;
//   2. Redis + PostgreSQL backend, one node;
//   3. Redis + PostgreSQL backend, three nodes on the same Redis + PostgreSQL, the same
//      total number of connections spread over them (one generator per node);
// at each total connection count. Reported: requests/s, p50/p99 (for three nodes: the
// worst node's percentiles), node CPU per request, Redis round trips per policy request
// counted by the nodes themselves (fumidai_redis_round_trips_total) and cross-checked on
// the server (INFO commandstats: EVALSHA calls), Redis CPU per request, PostgreSQL
// statements per request. Then Redis's own capacity for the observe script:
// redis-benchmark running EVALSHA of the real script (random senders).
//
// Options: --connections 8,24  --duration S  --warmup S  --users N  --repeat N
//          --redis URL --postgres URL (an admin database; a scratch database is created
//          and dropped)  --no-redis-benchmark  --redis-benchmark-only  --json FILE
import { execFile, fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { counterLayout } from '../src/engine/engine.ts';
import { configFromObject } from '../src/config/load.ts';
import { observeScript, counterTtlFor } from '../src/store/redis/lua.ts';
import { freePort, machineFacts, treeCpuSeconds } from './lib/proc.ts';
import { tempDir, type RunningServer } from './lib/server.ts';
import { median, round } from './lib/stats.ts';
import { configYaml, serveFumidai } from './fumidai-server.ts';
import { DEFAULT_LOAD, type ChildMessage, type LoadOptions, type LoadResult, type ParentMessage } from './policy-load.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const log = (s: string): void => void process.stderr.write(`${s}\n`);

const { values: argv } = parseArgs({
  options: {
    connections: { type: 'string', default: '8,24' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    users: { type: 'string', default: '10000' },
    repeat: { type: 'string', default: '1' },
    redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
    postgres: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
    'no-redis-benchmark': { type: 'boolean', default: false },
    'redis-benchmark-only': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const CONNS = argv.connections.split(',').map(Number);
const LIMIT = 50_000;

interface Node {
  readonly server: RunningServer;
  readonly metricsUrl: string | null;
}

function yaml(dataDir: string, port: number, metricsPort: number, state: string): string {
  return configYaml(dataDir, port, { windowSeconds: 3600, limit: LIMIT }, ['metrics:', `  listen: "127.0.0.1:${metricsPort}"`, state]);
}

async function startNode(state: string): Promise<Node> {
  const dir = tempDir('cluster');
  const port = await freePort();
  const metricsPort = await freePort();
  const server = await serveFumidai(dir, port, yaml(path.join(dir, 'data'), port, metricsPort, state));
  return { server, metricsUrl: `http://127.0.0.1:${metricsPort}` };
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let v = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) v += Number(line.split(' ').pop());
  return v;
}

interface ServerStats {
  readonly evalsha: number;
  readonly calls: number;
  readonly cpu: number;
}

async function redisStats(r: Redis): Promise<ServerStats> {
  const cmd = await r.info('commandstats');
  const cpu = await r.info('cpu');
  let evalsha = 0;
  let calls = 0;
  for (const line of cmd.split('\n')) {
    const m = /^cmdstat_([a-z_|]+):calls=(\d+)/.exec(line);
    if (!m) continue;
    if (m[1] === 'evalsha' || m[1] === 'eval') evalsha += Number(m[2]);
    calls += Number(m[2]);
  }
  const num = (k: string): number => Number(new RegExp(`^${k}:([0-9.]+)`, 'm').exec(cpu)?.[1] ?? 0);
  return { evalsha, calls, cpu: num('used_cpu_user') + num('used_cpu_sys') };
}

/** Runs one generator per node at the same time; hooks read counters around the measured phase. */
function loadAll(nodes: readonly Node[], connsPerNode: number, onWarmed: () => Promise<void>, onMeasured: () => Promise<void>): Promise<LoadResult[]> {
  return new Promise((resolve, reject) => {
    const kids = nodes.map((n) => {
      const child = fork(path.join(HERE, 'policy-load.ts'), ['--child'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const opts: LoadOptions = {
        ...DEFAULT_LOAD,
        port: n.server.port,
        connections: connsPerNode,
        users: Number(argv.users),
        warmupMs: Number(argv.warmup) * 1000,
        durationMs: Number(argv.duration) * 1000,
      };
      child.send({ type: 'start', opts } satisfies ParentMessage);
      return child;
    });
    const results: (LoadResult | null)[] = kids.map(() => null);
    let warmed = 0;
    let measured = 0;
    const all = (m: ParentMessage): void => kids.forEach((k) => k.send(m));
    kids.forEach((k, i) => {
      k.on('message', (raw: unknown) => {
        const m = raw as ChildMessage;
        if (m.type === 'warmed' && ++warmed === kids.length) void onWarmed().then(() => all({ type: 'continue' }), reject);
        else if (m.type === 'measured' && ++measured === kids.length) void onMeasured().then(() => all({ type: 'continue' }), reject);
        else if (m.type === 'result') {
          results[i] = m.result;
          if (results.every((r) => r !== null)) resolve(results as LoadResult[]);
        } else if (m.type === 'error') reject(new Error(m.message));
      });
      k.on('exit', (code) => {
        if (results[i] === null) reject(new Error(`load generator ${i} exited (${code}) without a result`));
      });
    });
  });
}

interface Row {
  readonly setup: string;
  readonly nodes: number;
  readonly connections: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly nodeCpuUsPerReq: number;
  readonly redisRoundTripsPerReq: number | null;
  readonly redisEvalshaPerReq: number | null;
  readonly redisCommandsPerReq: number | null;
  readonly redisCpuUsPerReq: number | null;
  readonly pgStatementsPerReq: number | null;
  readonly errors: number;
  readonly allowed: number;
}

async function measureSetup(setup: string, nodes: readonly Node[], total: number, redis: Redis | null): Promise<Row> {
  const per = Math.max(1, Math.round(total / nodes.length));
  let cpu0 = 0;
  let cpu1 = 0;
  let rt0 = 0;
  let rt1 = 0;
  let pg0 = 0;
  let pg1 = 0;
  let rs0 = null as ServerStats | null;
  let rs1 = null as ServerStats | null;
  const distributed = redis !== null;
  const sample = async (): Promise<[number, number, number, ServerStats | null]> => [
    nodes.reduce((a, n) => a + treeCpuSeconds(n.server.pid), 0),
    distributed ? (await Promise.all(nodes.map((n) => metric(n.metricsUrl!, 'fumidai_redis_round_trips_total')))).reduce((a, b) => a + b, 0) : 0,
    distributed ? (await Promise.all(nodes.map((n) => metric(n.metricsUrl!, 'fumidai_postgres_statements_total')))).reduce((a, b) => a + b, 0) : 0,
    redis ? await redisStats(redis) : null,
  ];
  const results = await loadAll(
    nodes,
    per,
    async () => {
      [cpu0, rt0, pg0, rs0] = await sample();
    },
    async () => {
      [cpu1, rt1, pg1, rs1] = await sample();
    },
  );
  const requests = results.reduce((a, r) => a + r.requests, 0);
  const seconds = Math.max(...results.map((r) => r.seconds));
  const allowed = results.reduce((a, r) => a + (r.actions['DUNNO'] ?? 0), 0);
  const per_ = (x: number): number => round(x / Math.max(1, requests), 3);
  return {
    setup,
    nodes: nodes.length,
    connections: per * nodes.length,
    rps: round(requests / seconds, 0),
    p50: Math.max(...results.map((r) => r.latencyMs.p50)),
    p99: Math.max(...results.map((r) => r.latencyMs.p99)),
    nodeCpuUsPerReq: round(((cpu1 - cpu0) / Math.max(1, requests)) * 1e6, 1),
    redisRoundTripsPerReq: distributed ? per_(rt1 - rt0) : null,
    redisEvalshaPerReq: rs0 && rs1 ? per_(rs1.evalsha - rs0.evalsha) : null,
    redisCommandsPerReq: rs0 && rs1 ? per_(rs1.calls - rs0.calls) : null,
    redisCpuUsPerReq: rs0 && rs1 ? round(((rs1.cpu - rs0.cpu) / Math.max(1, requests)) * 1e6, 1) : null,
    pgStatementsPerReq: distributed ? per_(pg1 - pg0) : null,
    errors: results.reduce((a, r) => a + r.errors, 0),
    allowed: round(allowed / Math.max(1, requests), 4),
  };
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(cmd, args, { timeout: 120_000, maxBuffer: 1 << 22 }, (e, out, err) => (e ? reject(new Error(`${e.message}\n${err}`)) : resolve(out))));
}

interface RedisBench {
  readonly clients: number;
  readonly pipeline: number;
  readonly opsPerSecond: number;
  readonly usecPerCall: number;
}

/** redis-benchmark running EVALSHA of the real observe script on random senders. */
async function redisBenchmark(redis: Redis, url: string): Promise<RedisBench[] | string> {
  const config = configFromObject({ limits: { windows: [{ name: 'hour', seconds: 3600, messages: LIMIT, recipients: LIMIT }] } });
  const layout = counterLayout(config);
  const ttl = counterTtlFor(layout);
  const sha = (await redis.script('LOAD', observeScript({ layout, counterTtl: ttl, indexTtl: ttl + 86400, hllThreshold: 256 }))) as string;
  const u = new URL(url);
  const out: RedisBench[] = [];
  const now = String(Math.floor(Date.now() / 1000));
  for (const [clients, pipeline] of [
    [50, 1],
    [50, 16],
  ] as const) {
    const before = await redis.info('commandstats');
    // KEYS: the sender's counters hash (its other keys are derived from it) and the index;
    // ARGV: the packed request (see observeScript), a message of one recipient.
    const packed = [now, 'm', '0', '1', '1', '126.1.1.1', '0', '', '', '', `${LIMIT},${LIMIT}`, '126.1.1.0/24', 'sender'].join('\n');
    const args = ['-h', u.hostname, '-p', u.port || '6379', '-c', String(clients), '-P', String(pipeline), '-n', '200000', '-r', '100000', '--csv',
      'EVALSHA', sha, '2', 'fumidai_rbench:{s:__rand_int__}:c', 'fumidai_rbench:{i}:a:0', packed];
    let text: string;
    try {
      text = await run('redis-benchmark', args);
    } catch (e) {
      return `redis-benchmark failed: ${(e as Error).message.split('\n')[0]}`;
    }
    const after = await redis.info('commandstats');
    const stat = (info: string): [number, number] => {
      const m = /^cmdstat_evalsha:calls=(\d+),usec=(\d+)/m.exec(info);
      return m ? [Number(m[1]), Number(m[2])] : [0, 0];
    };
    const [c0, u0] = stat(before);
    const [c1, u1] = stat(after);
    // The CSV's test name is the command, which contains newlines (the packed argument).
    const rps = Number(/","([0-9.]+)","[0-9.]+"/.exec(text)?.[1] ?? NaN);
    out.push({ clients, pipeline, opsPerSecond: round(rps, 0), usecPerCall: round((u1 - u0) / Math.max(1, c1 - c0), 2) });
    log(`redis-benchmark EVALSHA observe, ${clients} clients, pipeline ${pipeline}: ${round(rps, 0)} ops/s, ${round((u1 - u0) / Math.max(1, c1 - c0), 2)} µs Redis CPU per call`);
  }
  // Clean up the benchmark's keys.
  let cursor = '0';
  do {
    const [next, ks] = await redis.scan(cursor, 'MATCH', 'fumidai_rbench:*', 'COUNT', 5000);
    cursor = next;
    if (ks.length) await redis.unlink(...ks);
  } while (cursor !== '0');
  return out;
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const redis = new Redis(argv.redis);
  const dbName = `fumidai_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: argv.postgres });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const dbUrl = new URL(argv.postgres);
  dbUrl.pathname = `/${dbName}`;
  const prefix = `fumidai_bench_${process.pid}`;
  const distributedState = [
    'state:',
    '  backend: redis-postgres',
    `  redis: { url: ${JSON.stringify(argv.redis)}, keyPrefix: ${prefix} }`,
    `  postgres: { url: ${JSON.stringify(dbUrl.toString())} }`,
  ].join('\n');
  const rows: Row[] = [];
  try {
    for (let rep = 0; rep < (argv['redis-benchmark-only'] ? 0 : Number(argv.repeat)); rep++) {
      for (const total of CONNS) {
        for (const setup of ['embedded', 'redis-postgres', 'redis-postgres x3', 'redis-postgres x3 (conns per node)'] as const) {
          const n = setup.startsWith('redis-postgres x3') ? 3 : 1;
          const nodes: Node[] = [];
          try {
            for (let i = 0; i < n; i++) nodes.push(await startNode(setup === 'embedded' ? '' : distributedState));
            // "x3": the same total connections spread over three nodes; "(conns per node)": each
            // node gets as many as the single node had (three servers, three times the smtpds).
            const row = await measureSetup(setup, nodes, setup.endsWith('(conns per node)') ? total * 3 : total, setup === 'embedded' ? null : redis);
            rows.push(row);
            log(
              `${setup.padEnd(18)} c=${String(row.connections).padStart(3)}: ${row.rps} req/s, p50 ${row.p50} ms, p99 ${row.p99} ms, node CPU ${row.nodeCpuUsPerReq} µs/req` +
                (row.redisRoundTripsPerReq !== null ? `, Redis round trips/req ${row.redisRoundTripsPerReq} (server: EVALSHA/req ${row.redisEvalshaPerReq}, Redis CPU ${row.redisCpuUsPerReq} µs/req), PG statements/req ${row.pgStatementsPerReq}` : '') +
                `, errors ${row.errors}`,
            );
          } finally {
            for (const nd of nodes) await nd.server.stop();
          }
        }
      }
    }
    const rb = argv['no-redis-benchmark'] ? 'skipped' : await redisBenchmark(redis, argv.redis);
    // Medians over repeats.
    const summary: Row[] = [];
    for (const total of CONNS) {
      for (const setup of ['embedded', 'redis-postgres', 'redis-postgres x3', 'redis-postgres x3 (conns per node)']) {
        const want = setup.endsWith('(conns per node)') ? total * 3 : total;
        const rs = rows.filter((r) => r.setup === setup && Math.abs(r.connections - want) <= 2);
        if (rs.length === 0) continue;
        const m = (f: (r: Row) => number | null): number | null => {
          const vs = rs.map(f);
          return vs.some((v) => v === null) ? null : median(vs as number[]);
        };
        summary.push({
          ...rs[0]!,
          rps: m((r) => r.rps)!,
          p50: m((r) => r.p50)!,
          p99: m((r) => r.p99)!,
          nodeCpuUsPerReq: m((r) => r.nodeCpuUsPerReq)!,
          redisRoundTripsPerReq: m((r) => r.redisRoundTripsPerReq),
          redisEvalshaPerReq: m((r) => r.redisEvalshaPerReq),
          redisCommandsPerReq: m((r) => r.redisCommandsPerReq),
          redisCpuUsPerReq: m((r) => r.redisCpuUsPerReq),
          pgStatementsPerReq: m((r) => r.pgStatementsPerReq),
          errors: rs.reduce((a, r) => a + r.errors, 0),
        });
      }
    }
    const machine = machineFacts();
    const md: string[] = [
      `### Distributed backend benchmark (${startedAt.toISOString()})`,
      '',
      `Machine: ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}; Redis and PostgreSQL on the same machine. ` +
        `Load: bench/policy-load.ts, ${argv.users} sasl_usernames, ${DEFAULT_LOAD.rcptPerMessage} RCPT + 1 END-OF-MESSAGE per message, ${argv.warmup} s warm-up + ${argv.duration} s measured, ${argv.repeat} round(s), medians. ` +
        '"x3": three nodes with the same total connections spread over them; "x3 (conns per node)": three nodes with as many connections each as the single node; one generator per node; p50/p99 are the worst node\'s.',
      '',
      '| Setup | Nodes | Conns | req/s | p50 ms | p99 ms | node CPU µs/req | Redis round trips/req (nodes) | EVALSHA/req (Redis INFO) | Redis CPU µs/req | PG statements/req | errors |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...summary.map(
        (r) =>
          `| ${r.setup} | ${r.nodes} | ${r.connections} | ${r.rps.toLocaleString('en-US')} | ${r.p50} | ${r.p99} | ${r.nodeCpuUsPerReq} | ${r.redisRoundTripsPerReq ?? '–'} | ${r.redisEvalshaPerReq ?? '–'} | ${r.redisCpuUsPerReq ?? '–'} | ${r.pgStatementsPerReq ?? '–'} | ${r.errors} |`,
      ),
      '',
    ];
    for (const total of CONNS) {
      const at = (s: string) => summary.find((r) => r.setup === s && Math.abs(r.connections - (s.endsWith('(conns per node)') ? total * 3 : total)) <= 2);
      const e = at('embedded');
      const one = at('redis-postgres');
      const three = at('redis-postgres x3');
      const threeEach = at('redis-postgres x3 (conns per node)');
      if (one && threeEach) md.push(`- ${total} connections per node: three nodes together ${round(threeEach.rps / one.rps, 2)}× one node (target ≥ 1: ${threeEach.rps >= one.rps ? 'met' : 'NOT met'}).`);
      if (e && one) md.push(`- ${total} connections: one Redis node keeps ${round((one.rps / e.rps) * 100, 0)}% of the embedded node's throughput (target ≥ 50%: ${one.rps / e.rps >= 0.5 ? 'met' : 'NOT met'}).`);
      if (one && three) md.push(`- ${total} connections in all: three nodes together ${round(three.rps / one.rps, 2)}× one node (target ≥ 1: ${three.rps >= one.rps ? 'met' : 'NOT met'}).`);
      if (one?.redisRoundTripsPerReq != null) md.push(`- ${total} connections: ${one.redisRoundTripsPerReq} Redis round trips per policy request (target ≤ 1: ${one.redisRoundTripsPerReq <= 1 ? 'met' : 'NOT met'}).`);
    }
    if (typeof rb === 'string') md.push(`- redis-benchmark: ${rb}.`);
    else for (const b of rb) md.push(`- Redis alone, redis-benchmark EVALSHA of the observe script (random senders), ${b.clients} clients, pipeline ${b.pipeline}: ${b.opsPerSecond.toLocaleString('en-US')} ops/s, ${b.usecPerCall} µs of Redis CPU per call.`);
    process.stdout.write(`${md.join('\n')}\n`);
    const dir = path.join(HERE, 'results');
    mkdirSync(dir, { recursive: true });
    const file = argv.json ?? path.join(dir, `cluster-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify({ startedAt, machine, argv, rows, summary, redisBenchmark: rb }, null, 2)}\n`);
    log(`results: ${path.relative(process.cwd(), file)}`);
  } finally {
    let cursor = '0';
    do {
      const [next, ks] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 5000);
      cursor = next;
      if (ks.length) await redis.unlink(...ks);
    } while (cursor !== '0');
    redis.disconnect();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/cluster: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
