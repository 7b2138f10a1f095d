// Realistic Postfix 3.7 SMTPD access policy requests (docs/reference/mta-protocols.md §1),
// as smtpd sends them on a submission port with SASL AUTH and STARTTLS: the full
// attribute set in Postfix's order, RCPT requests per recipient and optionally one
// END-OF-MESSAGE request per message with the same `instance`.
import { IP_RANGES } from '../../src/sim/ip-ranges.ts';

export interface WorkloadOptions {
  /** Distinct sasl_usernames to cycle over (≥ 10,000 for the benchmark). */
  readonly users: number;
  /** RCPT requests per message. */
  readonly rcptPerMessage: number;
  /** Send an END-OF-MESSAGE request after the RCPTs of each message. */
  readonly endOfMessage: boolean;
}

/** A multiplier coprime with n, so that message m → user (m·k mod n) visits every user. */
function spreadFactor(n: number): number {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  for (const k of [7919, 7907, 7901, 104729, 1]) if (gcd(k, n) === 1) return k;
  return 1;
}

// Client addresses come from the Japanese home/office and mobile blocks of the verified
// address table the scenario generator uses (src/sim/ip-ranges.ts): the users of a
// Japanese provider sending from home. fumidai's country rules (sending from abroad is off
// by default) and region rules then stay quiet, like for real customers. The blocks are
// ≥ 99.8 % Japanese, not 100 % (e.g. 126.52.158.117 → PH, 153.254.83.207 → AU in the
// bundled country database), so a process can install a filter (bench/lib/jp-filter.ts)
// and an address that is not Japanese is drawn again.
const JP_BLOCKS: readonly { base: number; size: number }[] = (() => {
  const seen = new Set<string>();
  const out: { base: number; size: number }[] = [];
  for (const r of IP_RANGES) {
    if (r.country !== 'JP' || (r.use !== 'jp-fixed' && r.use !== 'jp-mobile') || seen.has(r.cidr)) continue;
    seen.add(r.cidr);
    const [addr, bits] = r.cidr.split('/') as [string, string];
    const base = addr.split('.').reduce((a, o) => a * 256 + Number(o), 0);
    out.push({ base, size: 2 ** (32 - Number(bits)) });
  }
  if (out.length === 0) throw new Error('no Japanese address blocks in src/sim/ip-ranges.ts');
  return out;
})();

let addressOk: ((ip: string) => boolean) | null = null;

/** Installs (or removes) a test that candidate client addresses must pass. */
export function setAddressFilter(f: ((ip: string) => boolean) | null): void {
  addressOk = f;
}

function candidateIp(user: number, which: number, attempt: number): string {
  const x = Math.imul(user + 1, 2654435761) ^ Math.imul(which + 1 + attempt * 7, 40503);
  const h = x >>> 0;
  const block = JP_BLOCKS[(user * 7 + which * 3 + attempt) % JP_BLOCKS.length]!;
  const v = block.base + 1 + (h % (block.size - 2));
  return `${Math.floor(v / 16777216) % 256}.${Math.floor(v / 65536) % 256}.${Math.floor(v / 256) % 256}.${v % 256}`;
}

/** Two stable client IPs per user (e.g. home and phone), both in Japan; per-user distinct IPs stay at 2. */
export function clientIp(user: number, which: number): string {
  let ip = candidateIp(user, which, 0);
  for (let attempt = 1; attempt < 16 && addressOk !== null && !addressOk(ip); attempt++) ip = candidateIp(user, which, attempt);
  return ip;
}

export function userName(user: number): string {
  return `u${String(user).padStart(6, '0')}@users.example.jp`;
}

const PID_HEX = (process.pid & 0xffff).toString(16);

/** One SMTP message being submitted on one policy connection. */
interface Message {
  readonly user: number;
  readonly sasl: string;
  readonly ip: string;
  readonly clientName: string;
  readonly helo: string;
  readonly clientPort: number;
  readonly instance: string;
  readonly queueId: string;
  readonly declaredSize: number;
  readonly recipients: readonly string[];
}

/**
 * Generates requests. Each connection (`Session`) walks through messages; the message
 * number is global so that users are spread across connections.
 */
export class Workload {
  private nextMessage = 0;
  private readonly k: number;
  /** clientIp(user, 0) and clientIp(user, 1), computed once. */
  private readonly ips: string[];

  constructor(readonly opts: WorkloadOptions) {
    if (!(opts.users >= 1)) throw new Error('users must be ≥ 1');
    if (!(opts.rcptPerMessage >= 1)) throw new Error('rcptPerMessage must be ≥ 1');
    this.k = spreadFactor(opts.users);
    this.ips = new Array<string>(opts.users * 2);
    for (let u = 0; u < opts.users; u++) {
      this.ips[2 * u] = clientIp(u, 0);
      this.ips[2 * u + 1] = clientIp(u, 1);
    }
  }

  /** Requests per message. */
  get requestsPerMessage(): number {
    return this.opts.rcptPerMessage + (this.opts.endOfMessage ? 1 : 0);
  }

  newMessage(): Message {
    const m = this.nextMessage++;
    const n = this.opts.users;
    const user = (m * this.k) % n;
    const cycle = Math.floor(m / n);
    const ip = this.ips[2 * user + (cycle % 2)]!;
    const sasl = userName(user);
    const recipients: string[] = [];
    for (let j = 0; j < this.opts.rcptPerMessage; j++) {
      const r = (m * 7 + j * 13) % 50_000;
      recipients.push(`r${r}@dest${r % 97}.example.com`);
    }
    const t = Date.now();
    return {
      user,
      sasl,
      ip,
      clientName: (user & 3) === 0 ? 'unknown' : `p${user}-ipngn.example.ne.jp`,
      helo: (user & 1) === 0 ? `[192.168.${user & 255}.${(user >> 8) & 255}]` : `DESKTOP-${(user * 31).toString(36).toUpperCase()}`,
      clientPort: 1024 + ((m * 37) % 64000),
      instance: `${PID_HEX}.${Math.floor(t / 1000).toString(16)}.${((t % 1000) * 1000).toString(16)}.${(m & 0xffff).toString(16)}`,
      queueId: (0x4000000000 + m).toString(16).toUpperCase().slice(-10),
      declaredSize: 1800 + ((m * 131) % 40_000),
      recipients,
    };
  }
}

/** Where one connection is within its current message. */
export class Session {
  private msg: Message | null = null;
  private step = 0;

  constructor(private readonly w: Workload) {}

  /** The user of the request last returned by next(). */
  user = 0;

  next(): string {
    let msg = this.msg;
    if (msg === null || this.step >= this.w.requestsPerMessage) {
      msg = this.msg = this.w.newMessage();
      this.step = 0;
    }
    const i = this.step++;
    this.user = msg.user;
    const k = msg.recipients.length;
    if (i < k) return request(msg, 'RCPT', i === 0 ? '' : msg.queueId, msg.recipients[i]!, 0, msg.declaredSize);
    // END-OF-MESSAGE: recipient only if exactly one, recipient_count = accepted, actual size.
    return request(msg, 'END-OF-MESSAGE', msg.queueId, k === 1 ? msg.recipients[0]! : '', k, msg.declaredSize + 512);
  }
}

function request(m: Message, state: string, queueId: string, rcpt: string, rcptCount: number, size: number): string {
  return (
    'request=smtpd_access_policy\n' +
    `protocol_state=${state}\n` +
    'protocol_name=ESMTP\n' +
    `helo_name=${m.helo}\n` +
    `queue_id=${queueId}\n` +
    `sender=${m.sasl}\n` +
    `recipient=${rcpt}\n` +
    `recipient_count=${rcptCount}\n` +
    `client_address=${m.ip}\n` +
    `client_name=${m.clientName}\n` +
    `reverse_client_name=${m.clientName}\n` +
    `instance=${m.instance}\n` +
    'sasl_method=PLAIN\n' +
    `sasl_username=${m.sasl}\n` +
    'sasl_sender=\n' +
    `size=${size}\n` +
    'ccert_subject=\n' +
    'ccert_issuer=\n' +
    'ccert_fingerprint=\n' +
    'ccert_pubkey_fingerprint=\n' +
    'encryption_protocol=TLSv1.3\n' +
    'encryption_cipher=TLS_AES_256_GCM_SHA384\n' +
    'encryption_keysize=256\n' +
    'etrn_domain=\n' +
    'stress=\n' +
    `client_port=${m.clientPort}\n` +
    'policy_context=\n' +
    'server_address=192.0.2.25\n' +
    'server_port=587\n' +
    '\n'
  );
}
