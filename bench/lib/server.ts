// What run.ts needs from every server under test, and helpers to start one.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isAlive, stopPids, processTree, treeCpuSeconds, waitExit } from './proc.ts';

export interface RunningServer {
  readonly name: string;
  readonly port: number;
  /** Root of the server's process tree (for forking servers, the master). */
  readonly pid: number;
  /** CPU seconds (user + system) used so far by the whole process tree. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

export interface ServerInfo {
  readonly name: string;
  readonly version: string;
  /** What this server does per request in the benchmark, for the report. */
  readonly does: string;
  /** The configuration it ran with (file contents / command line). */
  readonly config: string;
}

/** A rate limit: `limit` per `windowSeconds`, per sasl_username. */
export interface LimitSpec {
  readonly limit: number;
  readonly windowSeconds: number;
}

export interface ServerKind {
  readonly name: string;
  /** Null when it can run here; else why not (e.g. not installed yet). */
  unavailable(): string | null;
  info(spec: LimitSpec): ServerInfo;
  start(spec: LimitSpec): Promise<RunningServer>;
  /** Slow servers get the shorter "peer" duration. */
  readonly slow: boolean;
  /** Whether it enforces a limit at all (the do-nothing responder does not). */
  readonly enforces: boolean;
  /** ours, the ceiling, a peer as deployed by default, or a peer variant tuned beyond its defaults. */
  readonly role: 'ours' | 'ceiling' | 'peer' | 'peer-variant';
}

/** A fresh temp dir under os.tmpdir() (on this machine: the root disk), or under `base`. */
export function tempDir(prefix: string, base: string = os.tmpdir()): string {
  return mkdtempSync(path.join(base, `fumidai-bench-${prefix}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Keeps the last few KB of a child's output for error messages. */
export function captureOutput(child: ChildProcess): () => string {
  let tail = '';
  const add = (b: Buffer): void => {
    tail = (tail + b.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  return () => tail;
}

/** Resolves when the child prints a line matching `re`; rejects on exit or timeout. */
export function waitForLine(child: ChildProcess, re: RegExp, timeoutMs: number, output: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (b: Buffer): void => {
      seen = (seen + b.toString('utf8')).slice(-8000);
      if (re.test(seen)) done(null);
    };
    const onExit = (code: number | null, sig: string | null): void =>
      done(new Error(`exited (code ${code}, signal ${sig}) before ready:\n${output()}`));
    const timer = setTimeout(() => done(new Error(`not ready after ${timeoutMs} ms:\n${output()}`)), timeoutMs);
    const done = (e: Error | null): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      if (e) reject(e);
      else resolve();
    };
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** A RunningServer for a child process we spawned (non-forking, or forking with the tree under it). */
export function childServer(name: string, port: number, child: ChildProcess, cleanup: () => void): RunningServer {
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: no pid`);
  return {
    name,
    port,
    pid,
    cpuSeconds: () => treeCpuSeconds(pid),
    stop: async () => {
      const pids = isAlive(pid) ? processTree(pid) : [];
      await stopPids(pids);
      await waitExit(child, 2000);
      cleanup();
    },
  };
}

export function spawnLogged(cmd: string, args: readonly string[], cwd?: string): { child: ChildProcess; output: () => string } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd });
  const output = captureOutput(child);
  child.on('error', () => undefined);
  return { child, output };
}
