import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

// Starts the real `fumidai serve` as a child process with its own temporary data
// folder and free loopback ports, for tests that need the whole program.

const BIN = new URL('../../bin/fumidai.js', import.meta.url).pathname;

export interface FumidaiProcess {
  readonly dir: string;
  readonly configFile: string;
  /** "127.0.0.1:PORT" of the first policy listener. */
  readonly policy: string;
  readonly policyPort: number;
  readonly adminUrl: string;
  readonly token: string;
  readonly child: ChildProcess;
  output(): string;
  /** Runs a CLI command against this instance; resolves with exit code and output. */
  cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Stops and removes the data folder. */
  cleanup(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export async function startFumidai(configDoc: Record<string, unknown> = {}, opts: { dir?: string } = {}): Promise<FumidaiProcess> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'fumidai-proc-'));
  const adminPort = await freePort();
  const token = 'test-token-0123456789abcdef';
  const doc = {
    dataDir: join(dir, 'data'),
    policy: { listeners: [{ listen: '127.0.0.1:0' }] },
    ...configDoc,
    admin: { listen: `127.0.0.1:${adminPort}`, token },
  };
  const configFile = join(dir, 'fumidai.yaml');
  writeFileSync(configFile, stringify(doc));
  const child = spawn(process.execPath, [BIN, 'serve', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fumidai did not start within 20s:\n${out}`)), 20_000);
    const check = (): void => {
      if (out.includes('fumidai: ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fumidai exited with ${code}:\n${out}`));
    });
  });
  const policy = /policy server listening on (\S+)/.exec(out)![1]!;
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    dir,
    configFile,
    policy,
    policyPort: Number(policy.split(':').pop()),
    adminUrl,
    token,
    child,
    output: () => out,
    cli: (args) =>
      new Promise((resolve) => {
        const c = spawn(process.execPath, [BIN, ...args, '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        c.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
      }),
    async admin(method, path, body) {
      const res = await fetch(`${adminUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    kill,
    async cleanup() {
      await kill();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One policy request over a fresh connection; resolves with the action text. */
export async function policyRequest(port: number, attrs: Record<string, string>): Promise<string> {
  const net = await import('node:net');
  const body = `${Object.entries({ request: 'smtpd_access_policy', ...attrs }).map(([k, v]) => `${k}=${v}`).join('\n')}\n\n`;
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => {
      got += d.toString();
      if (got.endsWith('\n\n')) {
        s.destroy();
        resolve(got.trim().replace(/^action=/, ''));
      }
    });
    s.on('error', reject);
    s.on('close', () => {
      if (!got.endsWith('\n\n')) reject(new Error(`connection closed without a reply (got ${JSON.stringify(got)})`));
    });
    s.write(body);
  });
}
