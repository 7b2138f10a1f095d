// Turning runs into the summary table, the target checks and the markdown report.
// Shared by run.ts (one invocation) and summarize.ts (several result files merged).
import type { MachineFacts } from './proc.ts';
import type { SanityResult } from './sanity.ts';
import type { ServerInfo, ServerKind } from './server.ts';
import { median, round } from './stats.ts';
import type { LoadResult } from '../policy-load.ts';
import type { MemoryResult } from '../memory.ts';

export type Role = ServerKind['role'];
export type MemoryOutcome = MemoryResult | { status: 'error'; reason: string };
export type ServerEntry = ServerInfo & { readonly role: Role };
export interface Failure {
  readonly repeat: number;
  readonly server: string;
  readonly connections?: number;
  readonly error: string;
}

/** The run's options as recorded in its result file. */
export interface RecordedOptions {
  readonly repeat: number;
  readonly connections: readonly number[];
  readonly durationMs: number;
  readonly peerDurationMs: number;
  readonly warmupMs: number;
  readonly peerWarmupMs: number;
  readonly users: number;
  readonly limit: number;
  readonly quietThreshold: number;
}

/** What run.ts writes to bench/results/<timestamp>.json (summarize.ts reads and merges these). */
export interface ResultFile {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly argv: readonly string[];
  readonly machine: MachineFacts;
  readonly options: RecordedOptions;
  readonly load: { readonly rcptPerMessage: number; readonly endOfMessage: boolean; readonly users: number };
  readonly servers: Readonly<Record<string, ServerEntry>>;
  readonly skipped: Readonly<Record<string, string>>;
  readonly sanity: Readonly<Record<string, SanityResult | { error: string }>>;
  readonly summary: readonly SummaryRow[];
  readonly targets: Targets;
  readonly memory: MemoryOutcome | null;
  readonly failures: readonly Failure[];
  readonly runs: readonly RunRecord[];
  /** summarize.ts: the result files merged into this one. */
  readonly sources?: readonly string[];
}

export function markdown(r: ResultFile): string {
  const o = r.options;
  const rounds = new Set(r.runs.map((x) => `${x.repeat}`)).size;
  const when = r.sources ? `${r.sources.length} result files merged, ${r.startedAt} – ${r.finishedAt}` : r.startedAt;
  return [
    `## Policy server benchmark (${when})`,
    '',
    `Machine: ${machineLine(r.machine)}.`,
    `Load: ${r.load.users.toLocaleString('en-US')} sasl_usernames, ${r.load.rcptPerMessage} RCPT${r.load.endOfMessage ? ' + 1 END-OF-MESSAGE' : ''} request(s) per message, ` +
      `${rounds} round(s); ours and the ceiling ${o.warmupMs / 1000} s warm-up + ${o.durationMs / 1000} s measured, peers ${o.peerWarmupMs / 1000} s + ${o.peerDurationMs / 1000} s; ` +
      `limit ${o.limit.toLocaleString('en-US')} per hour per sasl_username. Medians over the rounds in which other processes used ≤ ${o.quietThreshold} cores ("runs used"; all rounds if none was that quiet).`,
    '',
    table(r.summary),
    '',
    ...r.targets.lines,
    ...Object.entries(r.skipped).map(([n, why]) => `- ${n} skipped: ${why}.`),
    ...r.failures.map((f) => `- FAILED: round ${f.repeat} ${f.server}${f.connections ? ` c=${f.connections}` : ''}: ${f.error.split('\n')[0]}`),
    ...Object.entries(r.sanity).map(([n, x]) => `- Limit check (3/hour) ${n}: ${'error' in x ? `error: ${x.error.split('\n')[0]}` : x.enforced ? 'enforced' : 'NOT enforced'}.`),
    ...memoryLines(r.memory),
    '',
  ].join('\n');
}

export interface RunRecord {
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

export interface SummaryRow {
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

export function summarize(runs: readonly RunRecord[], servers: readonly string[], conns: readonly number[]): SummaryRow[] {
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
        p50: round(m((r) => r.load.latencyMs.p50), 3),
        p90: round(m((r) => r.load.latencyMs.p90), 3),
        p99: round(m((r) => r.load.latencyMs.p99), 3),
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

export interface Targets {
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

export function targets(rows: readonly SummaryRow[], conns: readonly number[], roles: Readonly<Record<string, Role>>): Targets {
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
  if (!ours) lines.push('- fumidai was not measured (see skipped servers and failures); targets cannot be judged.');
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

export function table(rows: readonly SummaryRow[]): string {
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

export function memoryLines(m: MemoryOutcome | null): string[] {
  if (m === null) return [];
  if (m.status !== 'measured') return [`- Memory per tracked ID: not measured (${m.reason}).`];
  return m.scenarios.map(
    (s) => `- Memory, ${s.tracked.toLocaleString('en-US')} tracked IDs, ${s.name}: ${s.bytesPerId} bytes per ID${s.targeted === false ? ' (not part of the target)' : ` (target < 300: ${s.bytesPerId < 300 ? 'met' : 'NOT met'})`}.`,
  );
}

export function machineLine(m: MachineFacts): string {
  return `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.os}, kernel ${m.kernel}, Node ${m.node}; load average at start ${m.loadAvgAtStart.join(' / ')}`;
}

