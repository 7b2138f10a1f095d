// Realistic Postfix 3.7 SMTPD access policy requests (docs/reference/mta-protocols.md §1),
// as smtpd sends them on a submission port with SASL AUTH and STARTTLS: the full
// attribute set in Postfix's order, RCPT requests per recipient and optionally one
// END-OF-MESSAGE request per message with the same `instance`.

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

const FIRST_OCTETS = [126, 153, 180, 49, 60, 114, 210, 219, 27, 133, 203, 61] as const;

/** Two stable client IPs per user (home and office), so per-user distinct-IP counts stay at 2. */
export function clientIp(user: number, which: number): string {
  const x = (user * 2654435761 + which * 40503) >>> 0;
  const a = FIRST_OCTETS[(user + which * 5) % FIRST_OCTETS.length]!;
  return `${a}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${(x & 253) + 1}`;
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

  constructor(readonly opts: WorkloadOptions) {
    if (!(opts.users >= 1)) throw new Error('users must be ≥ 1');
    if (!(opts.rcptPerMessage >= 1)) throw new Error('rcptPerMessage must be ≥ 1');
    this.k = spreadFactor(opts.users);
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
    const ip = clientIp(user, cycle % 2);
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
