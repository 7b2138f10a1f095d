import net from 'node:net';
import { freePort, startFumidai, type FumidaiProcess } from '../support/fumidai-process.ts';

// Helpers for the distributed-state integration tests: nodes on one Redis + PostgreSQL,
// policy transactions over one connection, a TCP proxy that can be cut.

export interface NodeOptions {
  readonly redisUrl: string;
  readonly pgUrl: string;
  readonly prefix: string;
  readonly extra?: Record<string, unknown>;
  readonly state?: Record<string, unknown>;
  readonly dir?: string;
}

export async function startNode(o: NodeOptions): Promise<FumidaiProcess & { metricsUrl: string }> {
  const metricsPort = await freePort();
  const p = await startFumidai(
    {
      metrics: { listen: `127.0.0.1:${metricsPort}` },
      ...o.extra,
      state: {
        backend: 'redis-postgres',
        redis: { url: o.redisUrl, keyPrefix: o.prefix, ...((o.state?.['redis'] as object) ?? {}) },
        postgres: { url: o.pgUrl, schema: 'fumidai', ...((o.state?.['postgres'] as object) ?? {}) },
        ...Object.fromEntries(Object.entries(o.state ?? {}).filter(([k]) => k !== 'redis' && k !== 'postgres')),
      },
    },
    o.dir ? { dir: o.dir } : {},
  );
  return Object.assign(p, { metricsUrl: `http://127.0.0.1:${metricsPort}` });
}

/** A persistent policy connection (one Postfix smtpd process): one request at a time. */
export class PolicyConn {
  private sock: net.Socket;
  private buf = '';
  private waiting: ((reply: string) => void) | null = null;
  private failed: Error | null = null;
  private constructor(sock: net.Socket) {
    this.sock = sock;
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      const i = this.buf.indexOf('\n\n');
      if (i >= 0 && this.waiting) {
        const r = this.buf.slice(0, i).replace(/^action=/, '');
        this.buf = this.buf.slice(i + 2);
        const w = this.waiting;
        this.waiting = null;
        w(r);
      }
    });
    sock.on('error', (e) => (this.failed = e));
    sock.on('close', () => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w('CLOSED');
      }
    });
  }

  static open(port: number): Promise<PolicyConn> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => resolve(new PolicyConn(s)));
      s.once('error', reject);
    });
  }

  request(attrs: Record<string, string>): Promise<string> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.sock.write(`${Object.entries({ request: 'smtpd_access_policy', ...attrs }).map(([k, v]) => `${k}=${v}`).join('\n')}\n\n`);
    });
  }

  close(): void {
    this.sock.destroy();
  }
}

export interface TxResult {
  readonly rcpt: string;
  readonly eom: string | null;
  readonly ms: number;
}

let seq = 0;
/** RCPT then (if admitted) END-OF-MESSAGE with the same instance, as Postfix sends them. */
export async function transaction(conn: PolicyConn, user: string, ip = '126.1.2.3'): Promise<TxResult> {
  const instance = `t${process.pid}.${++seq}`;
  const base = { sasl_username: user, client_address: ip, sender: `${user}@example.jp`, instance };
  const t0 = performance.now();
  const rcpt = await conn.request({ ...base, protocol_state: 'RCPT', recipient: `r${seq}@example.com` });
  if (rcpt !== 'DUNNO') return { rcpt, eom: null, ms: performance.now() - t0 };
  const eom = await conn.request({ ...base, protocol_state: 'END-OF-MESSAGE', recipient_count: '1' });
  return { rcpt, eom, ms: performance.now() - t0 };
}

/** A TCP proxy in front of a service; `cut('refuse')` drops and refuses, `cut('blackhole')` accepts and never answers. */
export class CuttableProxy {
  readonly port: number;
  private readonly server: net.Server;
  private readonly pairs = new Set<net.Socket>();
  mode: 'pass' | 'refuse' | 'blackhole' = 'pass';

  private constructor(server: net.Server, port: number) {
    this.server = server;
    this.port = port;
  }

  static async start(targetPort: number): Promise<CuttableProxy> {
    const port = await freePort();
    let self: CuttableProxy | null = null;
    const server = net.createServer((client) => {
      const p = self!;
      if (p.mode === 'refuse') {
        client.destroy();
        return;
      }
      p.pairs.add(client);
      client.on('close', () => p.pairs.delete(client));
      client.on('error', () => client.destroy());
      if (p.mode === 'blackhole') return; // swallow everything
      const upstream = net.connect(targetPort, '127.0.0.1');
      p.pairs.add(upstream);
      upstream.on('close', () => {
        p.pairs.delete(upstream);
        client.destroy();
      });
      upstream.on('error', () => upstream.destroy());
      client.on('close', () => upstream.destroy());
      client.on('data', (d) => {
        if (p.mode === 'pass') upstream.write(d);
      });
      upstream.on('data', (d) => {
        if (p.mode === 'pass') client.write(d);
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    self = new CuttableProxy(server, port);
    return self;
  }

  /** refuse: existing connections are dropped, new ones closed at once. blackhole: everything stalls. */
  cut(mode: 'refuse' | 'blackhole'): void {
    this.mode = mode;
    if (mode === 'refuse') for (const s of this.pairs) s.destroy();
  }

  restore(): void {
    // Stalled connections are dropped so clients reconnect cleanly.
    if (this.mode === 'blackhole') for (const s of this.pairs) s.destroy();
    this.mode = 'pass';
  }

  close(): Promise<void> {
    for (const s of this.pairs) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(url);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

export async function metricValue(metricsUrl: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    if (line.startsWith(`${name}${labels} `) || (labels === '' && line.startsWith(`${name}{`))) sum += Number(line.split(' ').pop());
  }
  return sum;
}

export async function until<T>(what: string, f: () => Promise<T | null | false>, timeoutMs = 10_000, everyMs = 100): Promise<T> {
  const t0 = Date.now();
  let last: unknown = null;
  for (;;) {
    try {
      const v = await f();
      if (v !== null && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
