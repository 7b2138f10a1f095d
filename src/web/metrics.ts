import http from 'node:http';
import type { Engine } from '../engine/engine.ts';
import type { EngineEvent, Verdict } from '../engine/types.ts';
import { parseListenAddress } from '../doors/listen-address.ts';

// Prometheus metrics (text exposition format 0.0.4) and a health document, served on an
// unauthenticated listener meant for loopback (`metrics.listen`): GET /metrics and
// GET /health (200 when every store is up, 503 otherwise, JSON body either way).
// The admin API's /api/v1/health carries the same health fields, behind the token.

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labels(l: Readonly<Record<string, string>>): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${esc(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

export type StoreName = 'redis' | 'postgres' | 'embedded';

/** Which store an engine-reported error came from (the distributed stores tag their errors). */
export function storeOf(err: unknown, fallback: string): string {
  const s = (err as { store?: unknown } | null)?.store;
  return typeof s === 'string' ? s : fallback;
}

export class Metrics {
  private readonly decisions = new Map<string, number>();
  private readonly storeErrors = new Map<string, number>();
  private readonly buckets = new Float64Array(LATENCY_BUCKETS.length);
  private latencyCount = 0;
  private latencySum = 0;
  private readonly gauges: (() => readonly { name: string; help: string; type: 'gauge' | 'counter'; labels?: Record<string, string>; value: number }[])[] = [];

  /** Counts a verdict and its latency (seconds). */
  decision(stage: string, action: string, seconds: number): void {
    const key = `${stage}\u0000${action}`;
    this.decisions.set(key, (this.decisions.get(key) ?? 0) + 1);
    this.latencyCount++;
    this.latencySum += seconds;
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) if (seconds <= LATENCY_BUCKETS[i]!) this.buckets[i]!++;
  }

  storeError(store: StoreName | string): void {
    this.storeErrors.set(store, (this.storeErrors.get(store) ?? 0) + 1);
  }

  totalStoreErrors(): number {
    let n = 0;
    for (const v of this.storeErrors.values()) n += v;
    return n;
  }

  /** Adds values read at scrape time (store health, round trips, spool size). */
  addCollector(f: () => readonly { name: string; help: string; type: 'gauge' | 'counter'; labels?: Record<string, string>; value: number }[]): void {
    this.gauges.push(f);
  }

  /** Wraps engine.decide on this instance to time and count every verdict. */
  instrument(engine: Engine): void {
    const decide = engine.decide.bind(engine);
    engine.decide = async (event: EngineEvent): Promise<Verdict> => {
      const t0 = process.hrtime.bigint();
      const v = await decide(event);
      this.decision(event.kind, v.reasons.some((r) => r.rule === 'store-unavailable') ? `${v.action}-store-unavailable` : v.action, Number(process.hrtime.bigint() - t0) / 1e9);
      return v;
    };
  }

  render(): string {
    const out: string[] = [];
    out.push('# HELP fumidai_decisions_total Verdicts by event stage and action ("-store-unavailable": answered by policy.storeFailureAction).');
    out.push('# TYPE fumidai_decisions_total counter');
    for (const [k, v] of this.decisions) {
      const [stage, action] = k.split('\u0000') as [string, string];
      out.push(`fumidai_decisions_total${labels({ stage, action })} ${v}`);
    }
    out.push('# HELP fumidai_decision_duration_seconds Time from event to verdict inside the engine, store round trips included.');
    out.push('# TYPE fumidai_decision_duration_seconds histogram');
    LATENCY_BUCKETS.forEach((b, i) => out.push(`fumidai_decision_duration_seconds_bucket{le="${b}"} ${this.buckets[i]}`));
    out.push(`fumidai_decision_duration_seconds_bucket{le="+Inf"} ${this.latencyCount}`);
    out.push(`fumidai_decision_duration_seconds_sum ${this.latencySum}`);
    out.push(`fumidai_decision_duration_seconds_count ${this.latencyCount}`);
    out.push('# HELP fumidai_store_errors_total State store failures seen by the engine or the jobs, by store.');
    out.push('# TYPE fumidai_store_errors_total counter');
    for (const [store, v] of this.storeErrors) out.push(`fumidai_store_errors_total${labels({ store })} ${v}`);
    const seen = new Set<string>();
    for (const f of this.gauges) {
      for (const g of f()) {
        if (!seen.has(g.name)) {
          seen.add(g.name);
          out.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} ${g.type}`);
        }
        out.push(`${g.name}${labels(g.labels ?? {})} ${Number.isFinite(g.value) ? g.value : 'NaN'}`);
      }
    }
    return `${out.join('\n')}\n`;
  }
}

export interface MetricsServer {
  readonly address: string;
  close(): Promise<void>;
}

/** GET /metrics and GET /health on `listen` (no authentication: bind it to loopback). */
export async function startMetricsServer(listen: string, metrics: Metrics, health: () => Promise<{ ok: boolean } & Record<string, unknown>>): Promise<MetricsServer> {
  const addr = parseListenAddress(listen);
  if (addr instanceof Error) throw new Error(`metrics.listen: ${addr.message}`);
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (path === '/metrics') {
      const body = metrics.render();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (path === '/health') {
      health().then(
        (h) => {
          const body = JSON.stringify(h);
          res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
          res.end(body);
        },
        (e: Error) => {
          res.writeHead(503, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ ok: false, error: e.message }));
        },
      );
      return;
    }
    res.writeHead(404).end();
  });
  server.headersTimeout = 5000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (addr.kind === 'unix') server.listen(addr.path, resolve);
    else server.listen(addr.port, addr.host, resolve);
  });
  const b = server.address();
  const address = typeof b === 'object' && b !== null ? `http://${b.address.includes(':') ? `[${b.address}]` : b.address}:${b.port}` : `unix:${String(b)}`;
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
