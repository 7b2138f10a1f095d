// A tiny sequential policy client, for the "does this server really enforce the limit"
// check that runs before each server is benchmarked with high limits.
import net from 'node:net';
import { Session, Workload, userName } from './requests.ts';

/** Sends requests one at a time over one connection; returns each reply's action line. */
export async function sendSequential(port: number, requests: readonly string[], timeoutMs = 10_000): Promise<string[]> {
  const sock = net.connect({ host: '127.0.0.1', port });
  sock.setEncoding('utf8'); // replies may carry UTF-8 text (ours does: Japanese and English)
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  const out: string[] = [];
  let buf = '';
  try {
    for (const req of requests) {
      const reply = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no reply within timeout')), timeoutMs);
        const onData = (chunk: string): void => {
          buf += chunk;
          const end = buf.indexOf('\n\n');
          if (end < 0) return;
          const r = buf.slice(0, end);
          buf = buf.slice(end + 2);
          cleanup();
          resolve(r);
        };
        const onClose = (): void => {
          cleanup();
          reject(new Error('connection closed'));
        };
        const cleanup = (): void => {
          clearTimeout(timer);
          sock.off('data', onData);
          sock.off('close', onClose);
        };
        sock.on('data', onData);
        sock.once('close', onClose);
        sock.write(req);
      });
      out.push(reply.split('\n')[0] ?? '');
    }
  } finally {
    sock.destroy();
  }
  return out;
}

export interface SanityResult {
  readonly user: string;
  /** "RCPT → action=..." / "END-OF-MESSAGE → action=..." per request. */
  readonly steps: readonly string[];
  /** True when messages 1..limit were allowed and message limit+1 was refused at RCPT. */
  readonly enforced: boolean;
}

const isAllow = (actionLine: string): boolean => /^action=(dunno|ok)\b/i.test(actionLine);

/**
 * One user sends limit+1 messages (one RCPT and one END-OF-MESSAGE each). With a limit of
 * `limit` messages (and recipients) per hour, the RCPTs of the first `limit` messages must
 * be allowed and the RCPT of the next one refused.
 */
export async function checkLimitEnforced(port: number, limit: number): Promise<SanityResult> {
  const w = new Workload({ users: 1, rcptPerMessage: 1, endOfMessage: true });
  const s = new Session(w);
  const reqs: string[] = [];
  const states: string[] = [];
  for (let i = 0; i < (limit + 1) * 2; i++) {
    const r = s.next();
    reqs.push(r);
    states.push(/protocol_state=([^\n]*)/.exec(r)?.[1] ?? '?');
  }
  const actions = await sendSequential(port, reqs);
  const steps = actions.map((a, i) => `msg ${Math.floor(i / 2) + 1} ${states[i]} → ${a}`);
  const rcpt = actions.filter((_, i) => states[i] === 'RCPT');
  const enforced = rcpt.slice(0, limit).every(isAllow) && rcpt[limit] !== undefined && !isAllow(rcpt[limit]);
  return { user: userName(0), steps, enforced };
}
