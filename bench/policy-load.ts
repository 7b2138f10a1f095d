// Load generator for Postfix SMTPD policy servers.
//
// Opens C persistent TCP connections; each behaves like one Postfix smtpd process: it
// writes one request, waits for the `action=...\n\n` reply, then writes the next. The
// requests are realistic Postfix 3.7 RCPT / END-OF-MESSAGE requests cycling over many
// sasl_usernames (bench/lib/requests.ts). Per-request latency goes into a preallocated
// array; the result has requests/s, p50/p90/p99/max and the generator's own CPU time.
//
// Phases: warm-up (not recorded) → pause until every connection is idle → measure
// (time-bounded and count-bounded) → drain. Hooks run at the two idle points, so a caller
// can read the server's CPU time exactly around the measured requests.
//
// Use from another module (runLoad), as a forked child (run.ts does this so the
// generator and the server are separate processes), or from the command line:
//   node --import tsx bench/policy-load.ts --port 10040 --connections 8 --duration 5
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { installJapanFilter } from './lib/jp-filter.ts';
import { Session, Workload, type WorkloadOptions } from './lib/requests.ts';
import { percentile, round } from './lib/stats.ts';

export interface LoadOptions extends WorkloadOptions {
  readonly host: string;
  readonly port: number;
  readonly connections: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Hard cap on measured requests (sizes the latency array). */
  readonly maxRequests: number;
  /** A request without a reply after this long counts as an error; the connection is reopened. */
  readonly requestTimeoutMs: number;
  /** Upper bound on reconnects over the whole run. */
  readonly maxReconnects: number;
}

export const DEFAULT_LOAD: Omit<LoadOptions, 'port'> = {
  host: '127.0.0.1',
  connections: 8,
  warmupMs: 1000,
  durationMs: 5000,
  maxRequests: 2_000_000,
  requestTimeoutMs: 10_000,
  maxReconnects: 200,
  users: 10_000,
  rcptPerMessage: 2,
  endOfMessage: true,
};

export interface LatencySummary {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

export interface LoadResult {
  readonly connections: number;
  /** Replies received for requests sent in the measured phase. */
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  /** Milliseconds. */
  readonly latencyMs: LatencySummary;
  /** Reply counts by first word of the action, upper-cased (DUNNO, DEFER_IF_PERMIT, 450, ...). */
  readonly actions: Record<string, number>;
  /** Requests that got no reply (connection closed, timeout, garbage). */
  readonly errors: number;
  readonly reconnects: number;
  readonly warmupRequests: number;
  /** Distinct sasl_usernames in measured requests. */
  readonly distinctUsers: number;
  /** Generator process CPU (user+system) during the measured phase. */
  readonly generatorCpuSeconds: number;
  /** True when maxRequests ended the phase before durationMs. */
  readonly hitRequestCap: boolean;
}

export interface LoadHooks {
  /** Called when warm-up is over and no request is in flight. */
  onWarmed?(): Promise<void> | void;
  /** Called when the measured phase is over and no request is in flight. */
  onMeasured?(): Promise<void> | void;
}

type Phase = 'warmup' | 'measure' | 'drain' | 'closed';

class Conn {
  sock: net.Socket | null = null;
  buf = '';
  sentAt = 0n;
  outstanding = false;
  measured = false;
  user = 0;
  constructor(readonly session: Session) {}
}

export async function runLoad(opts: LoadOptions, hooks: LoadHooks = {}): Promise<LoadResult> {
  if (opts.connections < 1 || opts.connections > 1024) throw new Error('connections must be 1..1024');
  const workload = new Workload(opts);
  const lat = new Float64Array(opts.maxRequests); // microseconds
  let n = 0;
  let warmupRequests = 0;
  let errors = 0;
  let reconnects = 0;
  let phase: Phase = 'warmup';
  let lastReply = 0n;
  let hitCap = false;
  const actions = new Map<string, number>();
  const seenUsers = new Uint8Array(opts.users);
  const conns: Conn[] = [];
  let idleWaiter: (() => void) | null = null;

  const inFlight = (): number => conns.reduce((a, c) => a + (c.outstanding ? 1 : 0), 0);
  const checkIdle = (): void => {
    if (idleWaiter && inFlight() === 0) {
      const w = idleWaiter;
      idleWaiter = null;
      w();
    }
  };
  const waitIdle = (): Promise<void> =>
    new Promise<void>((resolve) => {
      idleWaiter = resolve;
      checkIdle();
    });

  const send = (c: Conn): void => {
    if (phase !== 'warmup' && phase !== 'measure') return;
    if (phase === 'measure' && n + inFlight() >= opts.maxRequests) {
      hitCap = true;
      return;
    }
    const req = c.session.next();
    c.user = c.session.user;
    c.measured = phase === 'measure';
    c.outstanding = true;
    c.sentAt = process.hrtime.bigint();
    c.sock!.write(req);
  };

  const onReply = (c: Conn, reply: string): void => {
    const now = process.hrtime.bigint();
    c.outstanding = false;
    const first = reply.indexOf('\n');
    const line = first < 0 ? reply : reply.slice(0, first);
    if (!line.startsWith('action=')) {
      errors++;
    } else if (c.measured) {
      const sp = line.indexOf(' ', 7);
      const word = (sp < 0 ? line.slice(7) : line.slice(7, sp)).toUpperCase();
      actions.set(word, (actions.get(word) ?? 0) + 1);
      lat[n++] = Number(now - c.sentAt) / 1000;
      seenUsers[c.user] = 1;
      lastReply = now;
    } else {
      warmupRequests++;
    }
    c.measured = false;
    send(c);
    checkIdle();
  };

  const connect = (c: Conn): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const s = net.connect({ host: opts.host, port: opts.port });
      s.setNoDelay(true);
      s.setEncoding('latin1');
      c.sock = s;
      c.buf = '';
      let connected = false;
      s.once('connect', () => {
        connected = true;
        resolve();
      });
      s.on('data', (chunk: string) => {
        c.buf += chunk;
        const end = c.buf.indexOf('\n\n');
        if (end < 0) return;
        const reply = c.buf.slice(0, end);
        c.buf = c.buf.slice(end + 2);
        if (c.buf.length > 0) {
          // A policy server must answer exactly once per request.
          errors++;
          c.buf = '';
        }
        if (c.outstanding) onReply(c, reply);
        else errors++;
      });
      s.on('error', (e) => {
        if (!connected) reject(e); // else 'close' follows
      });
      s.on('close', () => {
        if (c.sock !== s) return;
        c.sock = null;
        if (phase === 'closed') return;
        if (c.outstanding) {
          errors++;
          c.outstanding = false;
          c.measured = false;
        }
        if (reconnects >= opts.maxReconnects) {
          checkIdle();
          return;
        }
        reconnects++;
        // Postfix waits retry_delay (1 s) before reconnecting; a short pause is enough here.
        setTimeout(() => {
          if (phase === 'closed') return;
          connect(c).then(
            () => {
              send(c);
              checkIdle();
            },
            () => checkIdle(),
          );
        }, 50);
      });
    });

  for (let i = 0; i < opts.connections; i++) conns.push(new Conn(new Session(workload)));

  // Requests that never get a reply: count an error and reopen the connection.
  const timeoutNs = BigInt(opts.requestTimeoutMs) * 1_000_000n;
  const watchdog = setInterval(() => {
    const now = process.hrtime.bigint();
    for (const c of conns) if (c.outstanding && now - c.sentAt > timeoutNs) c.sock?.destroy();
  }, 250);

  try {
    await Promise.all(conns.map(connect));
    // Warm-up.
    for (const c of conns) send(c);
    await new Promise((r) => setTimeout(r, opts.warmupMs));
    phase = 'drain';
    await waitIdle();
    await hooks.onWarmed?.();

    // Measure.
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    phase = 'measure';
    for (const c of conns) if (c.sock) send(c);
    await new Promise<void>((resolve) => {
      const finish = (): void => {
        clearTimeout(stop);
        clearInterval(capCheck);
        resolve();
      };
      const stop = setTimeout(finish, opts.durationMs);
      const capCheck = setInterval(() => {
        if (hitCap) finish();
      }, 20);
    });
    phase = 'drain';
    await waitIdle();
    const cpu1 = process.cpuUsage(cpu0);
    const end = lastReply > t0 ? lastReply : process.hrtime.bigint();
    const seconds = Number(end - t0) / 1e9;
    await hooks.onMeasured?.();

    const sorted = lat.subarray(0, n).sort();
    let sum = 0;
    for (let i = 0; i < n; i++) sum += sorted[i]!;
    let distinct = 0;
    for (let i = 0; i < seenUsers.length; i++) distinct += seenUsers[i]!;
    const ms = (us: number): number => round(us / 1000, 3);
    return {
      connections: opts.connections,
      requests: n,
      seconds: round(seconds, 3),
      rps: round(n / seconds, 1),
      latencyMs: {
        p50: ms(percentile(sorted, 50)),
        p90: ms(percentile(sorted, 90)),
        p99: ms(percentile(sorted, 99)),
        max: ms(n ? sorted[n - 1]! : NaN),
        mean: ms(n ? sum / n : NaN),
      },
      actions: Object.fromEntries([...actions.entries()].sort((a, b) => b[1] - a[1])),
      errors,
      reconnects,
      warmupRequests,
      distinctUsers: distinct,
      generatorCpuSeconds: round((cpu1.user + cpu1.system) / 1e6, 3),
      hitRequestCap: hitCap,
    };
  } finally {
    phase = 'closed';
    clearInterval(watchdog);
    for (const c of conns) c.sock?.destroy();
  }
}

// ---- forked-child mode (used by run.ts) ------------------------------------------------

export type ParentMessage = { type: 'start'; opts: LoadOptions } | { type: 'continue' };
export type ChildMessage =
  | { type: 'warmed' }
  | { type: 'measured' }
  | { type: 'result'; result: LoadResult }
  | { type: 'error'; message: string };

function childMode(): void {
  const sendMsg = (m: ChildMessage): void => {
    process.send!(m);
  };
  let resume: (() => void) | null = null;
  const waitParent = (): Promise<void> => new Promise((r) => (resume = r));
  process.on('message', (raw: unknown) => {
    const m = raw as ParentMessage;
    if (m.type === 'continue') {
      const r = resume;
      resume = null;
      r?.();
    } else if (m.type === 'start') {
      const hooks: LoadHooks = {
        onWarmed: async () => {
          sendMsg({ type: 'warmed' });
          await waitParent();
        },
        onMeasured: async () => {
          sendMsg({ type: 'measured' });
          await waitParent();
        },
      };
      installJapanFilter()
        .then((warning) => {
          if (warning) process.stderr.write(`policy-load: ${warning}\n`);
          return runLoad(m.opts, hooks);
        })
        .then(
          (result) => {
            sendMsg({ type: 'result', result });
            process.disconnect();
          },
          (e: unknown) => {
            sendMsg({ type: 'error', message: e instanceof Error ? e.message : String(e) });
            process.disconnect();
          },
        );
    }
  });
}

// ---- command line -----------------------------------------------------------------------

async function cli(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: DEFAULT_LOAD.host },
      port: { type: 'string' },
      connections: { type: 'string', short: 'c', default: String(DEFAULT_LOAD.connections) },
      duration: { type: 'string', short: 'd', default: String(DEFAULT_LOAD.durationMs / 1000) },
      warmup: { type: 'string', default: String(DEFAULT_LOAD.warmupMs / 1000) },
      users: { type: 'string', default: String(DEFAULT_LOAD.users) },
      rcpt: { type: 'string', default: String(DEFAULT_LOAD.rcptPerMessage) },
      'no-eom': { type: 'boolean', default: false },
      'max-requests': { type: 'string', default: String(DEFAULT_LOAD.maxRequests) },
    },
  });
  if (!values.port) throw new Error('--port is required');
  const warning = await installJapanFilter();
  if (warning) process.stderr.write(`policy-load: ${warning}\n`);
  const result = await runLoad({
    ...DEFAULT_LOAD,
    host: values.host,
    port: Number(values.port),
    connections: Number(values.connections),
    durationMs: Number(values.duration) * 1000,
    warmupMs: Number(values.warmup) * 1000,
    users: Number(values.users),
    rcptPerMessage: Number(values.rcpt),
    endOfMessage: !values['no-eom'],
    maxRequests: Number(values['max-requests']),
  });
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  if (process.argv.includes('--child') && process.send) childMode();
  else
    cli().catch((e: unknown) => {
      process.stderr.write(`policy-load: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    });
}
