// A real Postfix (Debian's /usr/sbin/postfix, 3.7) for integration tests.
//
// startPostfix() runs an isolated instance from a fresh temporary folder: its own
// config, queue and data directories and its own log file (maillog_file), an smtpd
// listening on 127.0.0.1 at a free port that behaves like a submission service without
// TLS (XCLIENT allowed from loopback, SASL enabled, relay only for authenticated
// clients), and everything it accepts relayed to an in-process SMTP sink so tests can
// see what was delivered. No system-wide Postfix is needed or touched.
//
// Facts this relies on: the MTA notes, reference/mta-protocols.md §8 (Postfix 3.7.11,
// Debian 12), and the findings pinned by test/integration/postfix-harness.test.ts.
// Needs root.
//
// The instance is stopped by stop(); instances still running when the test process
// exits (or gets SIGINT/SIGTERM) are aborted synchronously, so no Postfix is left behind.

import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, chmodSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { keepAlive } from '../../support/keep-alive.ts';
import { requireTools, tcpReachable, type Requirements, type SkipOption } from '../../support/requirements.ts';
import { startSmtpSink, type SmtpSink } from '../../support/smtp-sink.ts';

export const POSTFIX = '/usr/sbin/postfix';
export const POSTCONF = '/usr/sbin/postconf';
export const POSTQUEUE = '/usr/sbin/postqueue';
export const SWAKS = '/usr/bin/swaks';
const REAPER = join(dirname(fileURLToPath(import.meta.url)), 'reaper.pl');
export const INSTALL_HINT = 'sudo bash scripts/install-test-deps.sh';

/** What startPostfix() and swaks() need. */
export const POSTFIX_REQUIREMENTS: Requirements = {
  root: true,
  bin: [POSTFIX, POSTCONF, POSTQUEUE, SWAKS, 'perl'],
  checks: [{ name: 'libsasl2-modules', ok: hasSaslPlainModule }],
};

/** Skip-or-run decision for a suite that uses startPostfix() and swaks(), plus `extra` needs. */
export function requirePostfix(suite: string, extra: Requirements = {}): Promise<SkipOption> {
  return requireTools(
    suite,
    {
      root: true,
      bin: [...(POSTFIX_REQUIREMENTS.bin ?? []), ...(extra.bin ?? [])],
      tcp: extra.tcp ?? [],
      checks: [...(POSTFIX_REQUIREMENTS.checks ?? []), ...(extra.checks ?? [])],
    },
    INSTALL_HINT,
  );
}

function hasSaslPlainModule(): boolean {
  for (const lib of ['/usr/lib', '/usr/lib64']) {
    if (existsSync(join(lib, 'sasl2', 'libplain.so.2'))) return true;
    let entries: string[] = [];
    try {
      entries = readdirSync(lib);
    } catch {
      continue;
    }
    for (const e of entries) {
      if (e.endsWith('-linux-gnu') && existsSync(join(lib, e, 'sasl2', 'libplain.so.2'))) return true;
    }
  }
  return false;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Per-client policy service settings, rendered as Postfix 3.0+ `{ ... }` syntax. */
export interface PolicyService {
  /** "inet:127.0.0.1:10040" or "unix:/path" (smtpd runs as user postfix: it needs write access to a unix socket). */
  readonly endpoint: string;
  /** smtpd_policy_service_default_action for this client, e.g. "DUNNO" (fail open). */
  readonly defaultAction?: string;
  /** Sent as the policy_context attribute. */
  readonly policyContext?: string;
  /** smtpd_policy_service_timeout for this client, e.g. "10s". */
  readonly timeout?: string;
  readonly tryLimit?: number;
  readonly retryDelay?: string;
}

/** `check_policy_service` argument text: a bare endpoint or `{ endpoint, name=value, ... }`. */
export function policyServiceSpec(policy: string | PolicyService): string {
  if (typeof policy === 'string') return policy;
  const parts = [policy.endpoint];
  if (policy.timeout !== undefined) parts.push(`timeout=${policy.timeout}`);
  if (policy.defaultAction !== undefined) parts.push(`default_action=${policy.defaultAction}`);
  if (policy.policyContext !== undefined) parts.push(`policy_context=${policy.policyContext}`);
  if (policy.tryLimit !== undefined) parts.push(`try_limit=${policy.tryLimit}`);
  if (policy.retryDelay !== undefined) parts.push(`retry_delay=${policy.retryDelay}`);
  return parts.length === 1 ? policy.endpoint : `{ ${parts.join(', ')} }`;
}

export interface PostfixOptions {
  /**
   * The policy service consulted at RCPT (smtpd_recipient_restrictions) and at
   * END-OF-MESSAGE (smtpd_end_of_data_restrictions): "inet:127.0.0.1:PORT",
   * "unix:/path", "{ inet:..., default_action=DUNNO, policy_context=x }", or an object.
   */
  readonly policy?: string | PolicyService;
  /** Where the policy service is consulted. Default: both. */
  readonly policyStages?: readonly ('rcpt' | 'end-of-data')[];
  /** smtpd_milters, e.g. "inet:127.0.0.1:PORT". */
  readonly milters?: string;
  /** main.cf settings applied last: they override everything the harness sets. */
  readonly extraMain?: Readonly<Record<string, string>>;
  /** Text appended to master.cf (more services, e.g. a second smtpd or a pool transport). */
  readonly extraMaster?: string;
  /** myhostname; must differ from the next hop's greeting name. */
  readonly myhostname?: string;
  /**
   * Where accepted mail goes. Default: a new in-process SMTP sink, closed by stop().
   * Pass a sink to share one (it is then not closed by stop()), or a "host:port"
   * next hop (then `sink` on the instance is null).
   */
  readonly nextHop?: SmtpSink | { readonly host: string; readonly port: number };
  /** ms to wait for the listener after `postfix start`. Default 15000. */
  readonly startTimeoutMs?: number;
}

export interface QueueEntry {
  readonly queue_name: string;
  readonly queue_id: string;
  readonly sender: string;
  readonly recipients: readonly { readonly address: string; readonly delay_reason?: string }[];
}

export interface PostfixInstance {
  readonly host: '127.0.0.1';
  /** The submission-like smtpd listener. */
  readonly port: number;
  /** The temporary folder holding everything of this instance. */
  readonly dir: string;
  readonly configDir: string;
  readonly queueDir: string;
  readonly logFile: string;
  /** The sink mail is relayed to, or null when `nextHop` was a plain address. */
  readonly sink: SmtpSink | null;
  /** The instance's log so far. */
  log(): string;
  /** Resolves with the first log line matching `pattern` (polling); rejects after timeoutMs. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** `postconf -c DIR -h NAME`: the effective value of a parameter. */
  postconf(name: string): Promise<string>;
  /** Runs `postfix -c DIR ...args` (e.g. ["flush"]). */
  postfix(...args: string[]): Promise<string>;
  /** The mail queue (`postqueue -j`). */
  queue(): Promise<QueueEntry[]>;
  /** Stops Postfix, waits until all its processes are gone, removes the folder. Idempotent. */
  stop(): Promise<void>;
}

function run(file: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env: env ?? process.env, timeout: 30_000 }, (error, stdout, stderr) => {
      if (error !== null) {
        reject(Object.assign(new Error(`${file} ${args.join(' ')}: ${error.message}\n${stderr}${stdout}`), { stdout, stderr }));
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

function renderMain(settings: ReadonlyMap<string, string>): string {
  let out = '# Generated by test/integration/postfix/harness.ts\n';
  for (const [name, value] of settings) {
    if (/[\r\n]/.test(value)) throw new Error(`main.cf value of ${name} must be one line`);
    out += `${name} = ${value}\n`;
  }
  return out;
}

// Debian's master.cf without chroot (nothing is set up in a temporary chroot), without
// local/virtual/pipe delivery, plus postlogd for maillog_file.
function renderMaster(port: number, extra: string): string {
  return `# Generated by test/integration/postfix/harness.ts
# service  type  private unpriv chroot wakeup maxproc command
127.0.0.1:${port} inet n - n - - smtpd
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n - 0 cleanup
qmgr       unix  n - n 300 1 qmgr
rewrite    unix  - - n - - trivial-rewrite
bounce     unix  - - n - 0 bounce
defer      unix  - - n - 0 bounce
trace      unix  - - n - 0 bounce
verify     unix  - - n - 1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n - - proxymap
proxywrite unix  - - n - 1 proxymap
smtp       unix  - - n - - smtp
relay      unix  - - n - - smtp
showq      unix  n - n - - showq
error      unix  - - n - - error
retry      unix  - - n - - error
discard    unix  - - n - - discard
anvil      unix  - - n - 1 anvil
scache     unix  - - n - 1 scache
postlog    unix-dgram n - n - 1 postlogd
${extra}
`;
}

// ---- process bookkeeping: never leave a Postfix behind ---------------------------

const live = new Map<string, { configDir: string; dir: string }>();
let exitHooksInstalled = false;

/** PIDs of processes started from this config directory (master passes MAIL_CONFIG on). */
export function pidsOf(configDir: string): number[] {
  const needle = `MAIL_CONFIG=${configDir}\0`;
  const pids: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return pids;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const env = readFileSync(`/proc/${e}/environ`, 'latin1');
      if ((env + '\0').includes(needle)) pids.push(Number(e));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids.filter((p) => p !== process.pid);
}

function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function abortSync(entry: { configDir: string; dir: string }): void {
  try {
    execFileSync(POSTFIX, ['-c', entry.configDir, 'abort'], { stdio: 'ignore', timeout: 5000 });
  } catch {
    // not running, or failed: the sweep below handles it
  }
  killAll(pidsOf(entry.configDir));
  rmSync(entry.dir, { recursive: true, force: true });
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', () => {
    for (const entry of live.values()) abortSync(entry);
    live.clear();
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const entry of live.values()) abortSync(entry);
      live.clear();
      process.kill(process.pid, signal);
    });
  }
}

// ---- the instance ------------------------------------------------------------------

export async function startPostfix(options: PostfixOptions = {}): Promise<PostfixInstance> {
  installExitHooks();
  const dir = mkdtempSync(join(tmpdir(), 'fumidai-postfix-'));
  // Postfix daemons run as user postfix and must reach config and queue.
  chmodSync(dir, 0o755);
  const configDir = join(dir, 'etc');
  const queueDir = join(dir, 'spool');
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'maillog');
  const entry = { configDir, dir };

  let ownSink: SmtpSink | null = null;
  let reaper: Reaper | null = null;
  const readLog = (): string => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const env = { ...process.env, MAIL_CONFIG: configDir };

  try {
    for (const d of [configDir, queueDir, dataDir]) mkdirSync(d, { mode: 0o755 });
    // master's lock file and the TLS/verify caches live here, written as mail_owner.
    execFileSync('chown', ['postfix:postfix', dataDir]);

    let sink: SmtpSink | null;
    let nextHop: { host: string; port: number };
    if (options.nextHop === undefined) {
      ownSink = await startSmtpSink({ hostname: 'sink.fumidai-test.invalid' });
      sink = ownSink;
      nextHop = { host: ownSink.host, port: ownSink.port };
    } else {
      sink = 'messages' in options.nextHop ? options.nextHop : null;
      nextHop = { host: options.nextHop.host, port: options.nextHop.port };
    }

    const port = await freePort();
    const stages = options.policyStages ?? ['rcpt', 'end-of-data'];
    const policy = options.policy === undefined ? null : `check_policy_service ${policyServiceSpec(options.policy)}`;
    const myhostname = options.myhostname ?? `mta-${port}.fumidai-test.invalid`;

    const main = new Map<string, string>([
      ['compatibility_level', '3.6'],
      ['queue_directory', queueDir],
      ['data_directory', dataDir],
      ['mail_owner', 'postfix'],
      ['setgid_group', 'postdrop'],
      ['maillog_file', logFile],
      ['maillog_file_prefixes', dir],
      ['syslog_name', 'postfix-test'],
      ['myhostname', myhostname],
      ['mydomain', 'fumidai-test.invalid'],
      ['myorigin', '$myhostname'],
      ['mydestination', ''],
      ['local_recipient_maps', ''],
      ['local_transport', 'error:5.1.1 local delivery is disabled in tests'],
      ['alias_maps', ''],
      ['alias_database', ''],
      ['biff', 'no'],
      ['append_dot_mydomain', 'no'],
      ['readme_directory', 'no'],
      ['inet_interfaces', '127.0.0.1'],
      // "all", not "ipv4": XCLIENT ADDR=IPV6:... fails with 501 5.5.4 under ipv4 only.
      ['inet_protocols', 'all'],
      ['mynetworks', '127.0.0.0/8'],
      ['relayhost', `[${nextHop.host}]:${nextHop.port}`],
      ['smtp_dns_support_level', 'disabled'],
      ['smtpd_peername_lookup', 'no'],
      ['smtp_tls_security_level', 'none'],
      ['smtpd_tls_security_level', 'none'],
      ['smtputf8_enable', 'yes'],
      // Fast queue: a deferred delivery is retried within a second or two.
      ['queue_run_delay', '1s'],
      ['minimal_backoff_time', '1s'],
      ['maximal_backoff_time', '2s'],
      ['smtp_connect_timeout', '5s'],
      // No artificial sleeps after errors or under load: tests send on purpose.
      ['smtpd_error_sleep_time', '0'],
      ['smtpd_soft_error_limit', '1000'],
      ['smtpd_hard_error_limit', '1000'],
      ['in_flow_delay', '0'],
      ['smtpd_client_connection_rate_limit', '0'],
      // Submission-like, without TLS: XCLIENT from loopback, SASL on (XCLIENT LOGIN
      // counts for permit_sasl_authenticated only then; needs libsasl2-modules).
      ['smtpd_authorized_xclient_hosts', '127.0.0.0/8'],
      ['smtpd_sasl_auth_enable', 'yes'],
      ['smtpd_sasl_security_options', 'noanonymous'],
      ['smtpd_client_restrictions', ''],
      ['smtpd_helo_restrictions', ''],
      ['smtpd_sender_restrictions', ''],
      ['smtpd_relay_restrictions', 'permit_sasl_authenticated, reject'],
      ['smtpd_recipient_restrictions', policy !== null && stages.includes('rcpt') ? policy : ''],
      ['smtpd_data_restrictions', ''],
      ['smtpd_end_of_data_restrictions', policy !== null && stages.includes('end-of-data') ? policy : ''],
      ['smtpd_policy_service_timeout', '10s'],
      ['smtpd_milters', options.milters ?? ''],
      ['milter_default_action', 'tempfail'],
    ]);
    for (const [k, v] of Object.entries(options.extraMain ?? {})) main.set(k, v);

    writeFileSync(join(configDir, 'main.cf'), renderMain(main));
    writeFileSync(join(configDir, 'master.cf'), renderMaster(port, options.extraMaster ?? ''));
    // Postfix re-reads a main.cf younger than ~2 s every 300 ms until it is older
    // (dict_load_file_xt: "file is being modified"), which costs ~2 s per command.
    // Backdating the files avoids that.
    const past = new Date(Date.now() - 60_000);
    for (const f of ['main.cf', 'master.cf']) utimesSync(join(configDir, f), past, past);

    live.set(dir, entry);
    // `postfix check` creates the queue directories and fails on a bad configuration.
    // `postfix start` would run it too, plus slower warning-only checks (~2 s); the
    // quick-start file makes it skip both.
    try {
      await run(POSTFIX, ['-c', configDir, 'check'], env);
    } catch (err) {
      throw new Error(`postfix -c ${configDir} check failed: ${(err as Error).message}\n--- log ---\n${readLog()}`);
    }
    writeFileSync(join(queueDir, 'quick-start'), '');
    reaper = await startUnderReaper(configDir, env, readLog);
    await waitForListener(port, options.startTimeoutMs ?? 15_000, readLog);

    let stopped = false;
    const instance: PostfixInstance = {
      host: '127.0.0.1',
      port,
      dir,
      configDir,
      queueDir,
      logFile,
      sink,
      log: readLog,
      async waitForLog(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const line = readLog()
            .split('\n')
            .find((l) => pattern.test(l));
          if (line !== undefined) return line;
          if (Date.now() > deadline) throw new Error(`no log line matching ${pattern} within ${timeoutMs} ms\n--- log ---\n${readLog()}`);
          await sleep(50);
        }
      },
      async postconf(name: string): Promise<string> {
        return (await run(POSTCONF, ['-c', configDir, '-h', name], env)).stdout.trim();
      },
      async postfix(...args: string[]): Promise<string> {
        return (await run(POSTFIX, ['-c', configDir, ...args], env)).stdout;
      },
      async queue(): Promise<QueueEntry[]> {
        const { stdout } = await run(POSTQUEUE, ['-c', configDir, '-j'], env);
        return stdout
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as QueueEntry);
      },
      async stop(): Promise<void> {
        if (stopped) return;
        stopped = true;
        try {
          await keepAlive(stopProcesses(configDir, env, reaper));
        } finally {
          live.delete(dir);
          rmSync(dir, { recursive: true, force: true });
          if (ownSink !== null) await ownSink.close();
        }
      },
    };
    return instance;
  } catch (err) {
    const failedReaper = reaper ?? (err as { reaper?: Reaper }).reaper ?? null;
    await keepAlive(stopProcesses(configDir, env, failedReaper)).catch(() => undefined);
    live.delete(dir);
    rmSync(dir, { recursive: true, force: true });
    if (ownSink !== null) await ownSink.close();
    throw err;
  }
}

async function waitForListener(port: number, timeoutMs: number, readLog: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await tcpReachable('127.0.0.1', port, 1000))) {
    if (Date.now() > deadline) throw new Error(`Postfix did not listen on 127.0.0.1:${port} within ${timeoutMs} ms\n--- log ---\n${readLog()}`);
    await sleep(50);
  }
}

/** A delay that does not keep the process alive. */
function unrefDelay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

interface Reaper {
  /** Resolves when the reaper ended, i.e. every process of the instance is gone. */
  readonly done: Promise<void>;
  kill(): void;
}

/** Runs `postfix -c DIR start` under reaper.pl (see there why) and waits for its status. */
async function startUnderReaper(configDir: string, env: NodeJS.ProcessEnv, readLog: () => string): Promise<Reaper> {
  // Not MAIL_CONFIG in the reaper's own environment: pidsOf() must not count (and kill) it.
  const { MAIL_CONFIG: _omit, ...reaperEnv } = env;
  const child = spawn('perl', [REAPER, POSTFIX, '-c', configDir, 'start'], { env: reaperEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  // A forgotten stop() must not keep the test process alive; the exit hook aborts Postfix.
  child.unref();
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (stderr += d));
  const done = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const status = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => resolve(null), 30_000);
    child.stdout.on('data', (d: string) => {
      stdout += d;
      const m = /^status (\d+)$/m.exec(stdout);
      if (m !== null) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('error', (err) => {
      stderr += String(err);
      clearTimeout(timer);
      resolve(null);
    });
    void done.then(() => {
      clearTimeout(timer);
      const m = /^status (\d+)$/m.exec(stdout);
      resolve(m === null ? null : Number(m[1]));
    });
  });
  (child.stdout as unknown as { unref?: () => void }).unref?.();
  (child.stderr as unknown as { unref?: () => void }).unref?.();
  const reaper: Reaper = {
    done,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
  if (status !== 0) {
    throw Object.assign(
      new Error(`postfix -c ${configDir} start failed (status ${status ?? 'unknown'}). ${stderr}\n--- log ---\n${readLog()}`),
      { reaper },
    );
  }
  return reaper;
}

async function stopProcesses(configDir: string, env: NodeJS.ProcessEnv, reaper: Reaper | null): Promise<void> {
  if (reaper !== null || pidsOf(configDir).length > 0) {
    try {
      await run(POSTFIX, ['-c', configDir, 'abort'], env);
    } catch {
      // not running (start failed half-way) or stop timed out: handled below
    }
  }
  // The reaper ends when master and all its children are gone and reaped.
  const deadline = Date.now() + 8000;
  if (reaper !== null) await Promise.race([reaper.done, unrefDelay(8000)]);
  while (pidsOf(configDir).length > 0 && Date.now() < deadline) await sleep(50);
  killAll(pidsOf(configDir));
  if (reaper !== null) {
    await Promise.race([reaper.done, unrefDelay(2000)]);
    reaper.kill();
  }
}

// ---- swaks -----------------------------------------------------------------------------

export interface SmtpReply {
  readonly code: number;
  /** RFC 3463 code at the start of the text, e.g. "4.7.1", or null. */
  readonly enhanced: string | null;
  /** The reply text (after "NNN " / "NNN-"), lines joined by "\n". */
  readonly text: string;
  /** The reply lines as received, e.g. ["550 5.7.1 No"]. */
  readonly lines: readonly string[];
}

export interface SmtpExchange {
  /** What the client sent ("CONNECT" for the greeting, "." for the end of data). */
  readonly command: string;
  /** Upper-case first word: "CONNECT", "EHLO", "XCLIENT", "MAIL", "RCPT", "DATA", "EOD", "QUIT"... */
  readonly verb: string;
  readonly reply: SmtpReply;
}

export interface SwaksOptions {
  /** Port of the smtpd to talk to (on 127.0.0.1 unless `server` says otherwise). */
  readonly port: number;
  readonly server?: string;
  readonly from: string;
  readonly to: string | readonly string[];
  /** XCLIENT LOGIN= (a SASL login as Postfix's policy server and milters see it). */
  readonly login?: string;
  /** XCLIENT ADDR= (IPv6 as "IPV6:2001:db8::1"). */
  readonly addr?: string;
  /** XCLIENT NAME=. */
  readonly clientName?: string;
  readonly helo?: string;
  /** Extra headers, e.g. { Subject: "x", "X-Test-Id": "3" }. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** The exact DATA content (headers + body); sent byte for byte (--no-data-fixup). */
  readonly data?: string | Buffer;
  /** swaks --quit-after: "RCPT", "MAIL", "XCLIENT", ... */
  readonly quitAfter?: string;
  readonly extraArgs?: readonly string[];
  /** Whole run. Default 20000 ms. */
  readonly timeoutMs?: number;
}

export interface SwaksResult {
  /** swaks' exit code: 0 ok, 23 MAIL, 24 no RCPT accepted, 25 DATA, 26 after data, 33 XCLIENT... */
  readonly exitCode: number;
  /** swaks' output as UTF-8 text. */
  readonly transcript: string;
  /** swaks' output as bytes. */
  readonly stdout: Buffer;
  readonly stderr: string;
  readonly exchanges: readonly SmtpExchange[];
  /** Reply to each RCPT, in order. */
  readonly rcpt: readonly SmtpReply[];
  /** Reply to the last RCPT. */
  readonly lastRcpt: SmtpReply | null;
  /** Reply to the DATA command (354 when it may proceed). */
  readonly data: SmtpReply | null;
  /** Reply after the message's final "." (250 when queued). */
  readonly endOfData: SmtpReply | null;
  /** The reply that decided the outcome: endOfData, else the first failing reply, else the last one. */
  readonly final: SmtpReply | null;
  /** Whether the message was accepted (250 after end of data). */
  readonly accepted: boolean;
}

function parseReplyLine(body: string): { code: number; last: boolean; text: string } | null {
  const m = /^(\d{3})([ -]?)(.*)$/.exec(body);
  if (m === null) return null;
  return { code: Number(m[1]), last: m[2] !== '-', text: m[3] ?? '' };
}

/** Splits a swaks transcript into command/reply exchanges. */
export function parseSwaksTranscript(transcript: string): SmtpExchange[] {
  const exchanges: SmtpExchange[] = [];
  let command = 'CONNECT';
  let inData = false;
  let replyLines: string[] = [];
  let replyTexts: string[] = [];
  for (const rawLine of transcript.split('\n')) {
    const line = rawLine.replace(/\r$/, '');
    const sent = /^ [-~]> (.*)$/.exec(line);
    if (sent !== null) {
      const text = sent[1] ?? '';
      if (inData) {
        if (text === '.') {
          inData = false;
          command = '.';
        }
      } else {
        command = text;
      }
      continue;
    }
    const got = /^<[-~*][-~* ] ?(.*)$/.exec(line);
    if (got === null) continue;
    const body = got[1] ?? '';
    const parsed = parseReplyLine(body);
    if (parsed === null) continue;
    replyLines.push(body);
    replyTexts.push(parsed.text);
    if (!parsed.last) continue;
    const text = replyTexts.join('\n');
    const enhanced = /^([245]\.\d{1,3}\.\d{1,3})\b/.exec(text);
    const verb = command === '.' ? 'EOD' : (command.split(/[\s:]/, 1)[0] ?? '').toUpperCase();
    exchanges.push({
      command,
      verb,
      reply: { code: parsed.code, enhanced: enhanced === null ? null : (enhanced[1] ?? null), text, lines: replyLines },
    });
    if (verb === 'DATA' && parsed.code === 354) inData = true;
    replyLines = [];
    replyTexts = [];
  }
  return exchanges;
}

/** Runs /usr/bin/swaks against a local smtpd and parses what the server answered. */
export async function swaks(options: SwaksOptions): Promise<SwaksResult> {
  const to = typeof options.to === 'string' ? [options.to] : [...options.to];
  const args = [
    '--server', options.server ?? '127.0.0.1',
    '--port', String(options.port),
    '--from', options.from,
    '--to', to.join(','),
    '--helo', options.helo ?? 'client.fumidai-test.invalid',
    '--timeout', '15s',
  ];
  if (options.login !== undefined) args.push('--xclient-login', options.login);
  if (options.addr !== undefined) args.push('--xclient-addr', options.addr);
  if (options.clientName !== undefined) args.push('--xclient-name', options.clientName);
  for (const [name, value] of Object.entries(options.headers ?? {})) args.push('--add-header', `${name}: ${value}`);
  if (options.body !== undefined) args.push('--body', options.body);
  let dataDir: string | null = null;
  if (options.data !== undefined) {
    dataDir = mkdtempSync(join(tmpdir(), 'fumidai-swaks-'));
    const file = join(dataDir, 'data.eml');
    const content = Buffer.isBuffer(options.data) ? options.data : Buffer.from(options.data, 'utf8');
    const ending = content.toString('latin1').endsWith('\n') ? '' : '\r\n';
    // No line end after the final dot: swaks sends one itself (with one here it sent an
    // extra empty line after the message, which answered the next command with 500).
    writeFileSync(file, Buffer.concat([content, Buffer.from(`${ending}.`)]));
    args.push('--data', `@${file}`, '--no-data-fixup');
  }
  if (options.quitAfter !== undefined) args.push('--quit-after', options.quitAfter);
  args.push(...(options.extraArgs ?? []));

  try {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: Buffer; stderr: string }>((resolve, reject) => {
      execFile(
        SWAKS,
        args,
        { encoding: 'buffer', timeout: options.timeoutMs ?? 20_000, maxBuffer: 16 * 1024 * 1024 },
        (error, out, err) => {
          if (error !== null && typeof error.code !== 'number') {
            reject(new Error(`swaks did not run: ${error.message}\n${err.toString('utf8')}`));
            return;
          }
          resolve({ code: error === null ? 0 : Number(error.code), stdout: out, stderr: err.toString('utf8') });
        },
      );
    });
    const transcript = stdout.toString('utf8');
    const exchanges = parseSwaksTranscript(transcript);
    const rcpt = exchanges.filter((e) => e.verb === 'RCPT').map((e) => e.reply);
    const data = exchanges.filter((e) => e.verb === 'DATA').at(-1)?.reply ?? null;
    const endOfData = exchanges.filter((e) => e.verb === 'EOD').at(-1)?.reply ?? null;
    const failing = exchanges.find((e) => e.verb !== 'QUIT' && e.reply.code >= 400)?.reply ?? null;
    const final = endOfData ?? failing ?? exchanges.filter((e) => e.verb !== 'QUIT').at(-1)?.reply ?? null;
    return {
      exitCode: code,
      transcript,
      stdout,
      stderr,
      exchanges,
      rcpt,
      lastRcpt: rcpt.at(-1) ?? null,
      data,
      endOfData,
      final,
      accepted: endOfData !== null && endOfData.code === 250,
    };
  } finally {
    if (dataDir !== null) rmSync(dataDir, { recursive: true, force: true });
  }
}
