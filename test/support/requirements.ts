// Prerequisites of integration suites (programs, running services, root).
//
// Locally, a suite whose prerequisites are missing is skipped, and one line
//   "<suite>: needs <what>; install with: <command>"
// is appended to the file named by FUMIDAI_SKIP_REPORT, which scripts/test.sh prints
// after the run. Under CI=true a missing prerequisite is a hard failure: CI installs
// everything (.ci/run), so a skip there would hide a broken setup.
//
// Usage, at the top level of an ESM test file:
//   const req = await requireTools('postfix policy', { bin: ['/usr/sbin/postfix'] }, 'sudo bash scripts/install-test-deps.sh');
//   describe('postfix policy', { ...req, timeout: 60_000 }, () => { ... });

import { accessSync, appendFileSync, constants } from 'node:fs';
import { connect } from 'node:net';
import { delimiter, isAbsolute, join } from 'node:path';

export interface TcpRequirement {
  readonly host: string;
  readonly port: number;
  /** What listens there, for the report: "Redis", "PostgreSQL". */
  readonly name: string;
}

export interface CheckRequirement {
  /** What is missing when `ok()` is false, for the report: "libsasl2-modules". */
  readonly name: string;
  readonly ok: () => boolean;
}

export interface Requirements {
  /** Programs: absolute paths, or names looked up in PATH. */
  readonly bin?: readonly string[];
  /** Services that must accept a TCP connection. */
  readonly tcp?: readonly TcpRequirement[];
  /** The suite must run as root (real Postfix does). */
  readonly root?: boolean;
  /** Anything else (a file, a library). */
  readonly checks?: readonly CheckRequirement[];
}

/** Spread into the options of node:test's describe()/test(). */
export type SkipOption = { readonly skip: false } | { readonly skip: string };

/** Thrown under CI=true when a prerequisite is missing. */
export class MissingPrerequisiteError extends Error {
  override readonly name = 'MissingPrerequisiteError';
}

export function isCi(): boolean {
  return process.env['CI'] === 'true';
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The absolute path of a program, or null. */
export function findBinary(bin: string): string | null {
  if (isAbsolute(bin) || bin.includes('/')) return isExecutable(bin) ? bin : null;
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, bin);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

/** Whether something accepts a TCP connection at host:port within timeoutMs. */
export function tcpReachable(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** The list of what is missing, as short phrases; empty when all is there. */
export async function missingPrerequisites(req: Requirements): Promise<string[]> {
  const missing: string[] = [];
  if (req.root === true && process.getuid?.() !== 0) missing.push('root');
  for (const bin of req.bin ?? []) {
    if (findBinary(bin) === null) missing.push(bin);
  }
  for (const check of req.checks ?? []) {
    let ok = false;
    try {
      ok = check.ok();
    } catch {
      ok = false;
    }
    if (!ok) missing.push(check.name);
  }
  const reachable = await Promise.all((req.tcp ?? []).map((t) => tcpReachable(t.host, t.port)));
  (req.tcp ?? []).forEach((t, i) => {
    if (reachable[i] !== true) missing.push(`${t.name} at ${t.host}:${t.port}`);
  });
  return missing;
}

/**
 * Decides whether `suite` runs. When something is missing: throws under CI=true,
 * otherwise records the skip (FUMIDAI_SKIP_REPORT) and returns `{ skip: reason }`.
 */
export async function requireTools(suite: string, req: Requirements, installHint: string): Promise<SkipOption> {
  const missing = await missingPrerequisites(req);
  if (missing.length === 0) return { skip: false };
  const line = `${suite}: needs ${missing.join(', ')}; install with: ${installHint}`;
  if (isCi()) throw new MissingPrerequisiteError(`CI=true and a prerequisite is missing. ${line}`);
  const report = process.env['FUMIDAI_SKIP_REPORT'];
  if (report !== undefined && report !== '') appendFileSync(report, line + '\n');
  return { skip: line };
}
