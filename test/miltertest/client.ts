// A tiny MTA side of the milter protocol for tests and the benchmark: builds the
// packets Postfix sends and reads the milter's replies. Not a product part.

import net from 'node:net';
import { encodePacket, KNOWN_RESPONSES, MilterFrameDecoder, SMFIC, SMFIR, type Packet } from '../../src/doors/milter/codec.ts';

/** Postfix 3.x with milter_protocol = 6 offers these. */
export const POSTFIX_OFFER = { version: 6, actions: 0x1ff, protocol: 0x1fffff } as const;

function nul(...strings: string[]): Buffer {
  return Buffer.from(strings.map((s) => `${s}\0`).join(''), 'utf8');
}

export const pkt = {
  optneg(version = 6, actions = 0x1ff, protocol = 0x1fffff): Buffer {
    const b = Buffer.alloc(12);
    b.writeUInt32BE(version, 0);
    b.writeUInt32BE(actions, 4);
    b.writeUInt32BE(protocol >>> 0, 8);
    return encodePacket(SMFIC.OPTNEG, b);
  },
  macro(stage: string, macros: Readonly<Record<string, string>>): Buffer {
    const parts = Object.entries(macros).flatMap(([k, v]) => [k, v]);
    return encodePacket(SMFIC.MACRO, Buffer.concat([Buffer.from(stage, 'latin1'), nul(...parts)]));
  },
  connect(hostname: string, address: string, port = 51234): Buffer {
    const family = address.includes(':') ? '6' : '4';
    const p = Buffer.alloc(2);
    p.writeUInt16BE(port, 0);
    return encodePacket(SMFIC.CONNECT, Buffer.concat([nul(hostname), Buffer.from(family), p, nul(address)]));
  },
  helo: (name: string) => encodePacket(SMFIC.HELO, nul(name)),
  mail: (...args: string[]) => encodePacket(SMFIC.MAIL, nul(...args)),
  rcpt: (...args: string[]) => encodePacket(SMFIC.RCPT, nul(...args)),
  data: () => encodePacket(SMFIC.DATA),
  header: (name: string, value: string) => encodePacket(SMFIC.HEADER, nul(name, value)),
  eoh: () => encodePacket(SMFIC.EOH),
  body: (bytes: Buffer | string) => encodePacket(SMFIC.BODY, Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'utf8')),
  eob: () => encodePacket(SMFIC.BODYEOB),
  abort: () => encodePacket(SMFIC.ABORT),
  quit: () => encodePacket(SMFIC.QUIT),
  quitNc: () => encodePacket(SMFIC.QUIT_NC),
  unknown: (cmd: string) => encodePacket(SMFIC.UNKNOWN, nul(cmd)),
};

/** Replies that end an end-of-message exchange. */
const FINAL: ReadonlySet<number> = new Set([SMFIR.CONTINUE, SMFIR.ACCEPT, SMFIR.REJECT, SMFIR.TEMPFAIL, SMFIR.DISCARD, SMFIR.REPLYCODE, SMFIR.SHUTDOWN]);

export interface EomResult {
  /** All replies, the final one last. */
  readonly replies: readonly Packet[];
  readonly final: Packet;
  /** Added headers as [name, value] (value as sent, with a leading space under HDR_LEADSPC). */
  readonly added: readonly (readonly [string, string])[];
  readonly quarantine: string | null;
  /** REPLYCODE text, or null. */
  readonly reply: string | null;
}

export function summarizeEom(replies: readonly Packet[]): EomResult {
  const added: [string, string][] = [];
  let quarantine: string | null = null;
  let reply: string | null = null;
  for (const p of replies) {
    const strings = p.data.toString('utf8').split('\0');
    if (p.cmd === SMFIR.ADDHEADER) added.push([strings[0]!, strings[1]!]);
    if (p.cmd === SMFIR.QUARANTINE) quarantine = strings[0]!;
    if (p.cmd === SMFIR.REPLYCODE) reply = strings[0]!;
  }
  return { replies, final: replies.at(-1)!, added, quarantine, reply };
}

export interface MessageSpec {
  readonly login?: string;
  readonly queueId?: string;
  readonly from?: string;
  readonly rcpts?: readonly string[];
  readonly headers?: readonly (readonly [string, string])[];
  readonly body?: Buffer | string;
}

export class MilterClient {
  private readonly decoder = new MilterFrameDecoder(64 * 1024 * 1024, KNOWN_RESPONSES);
  private readonly inbox: Packet[] = [];
  private waiter: (() => void) | null = null;
  private ended = false;
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const p of this.decoder.push(chunk)) this.inbox.push(p);
      this.waiter?.();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.ended = true;
        this.waiter?.();
        resolve();
      });
    });
    socket.on('error', () => socket.destroy());
  }

  static connect(target: { host: string; port: number } | { path: string }): Promise<MilterClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(target as net.NetConnectOpts);
      s.setNoDelay(true);
      s.once('connect', () => resolve(new MilterClient(s)));
      s.once('error', reject);
    });
  }

  send(...packets: Buffer[]): void {
    this.socket.write(packets.length === 1 ? packets[0]! : Buffer.concat(packets));
  }

  /** The next reply; rejects on timeout or when the milter closed the connection. */
  async next(timeoutMs = 5000): Promise<Packet> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = this.inbox.shift();
      if (p !== undefined) return p;
      if (this.ended) throw new Error('milter closed the connection');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          this.waiter = null;
          resolve();
        };
      });
    }
  }

  /** Replies received and not yet read. */
  pending(): number {
    return this.inbox.length;
  }

  /** Protocol flags the milter asked for in OPTNEG. */
  protocol = 0;

  /** OPTNEG as Postfix offers it; returns the milter's OPTNEG reply. */
  async negotiate(version = 6, actions = 0x1ff, protocol = 0x1fffff): Promise<Packet> {
    this.send(pkt.optneg(version, actions, protocol));
    const reply = await this.next();
    if (reply.cmd === 0x4f && reply.data.length >= 12) this.protocol = reply.data.readUInt32BE(8);
    return reply;
  }

  /** Sends EOB and reads replies up to the final one. */
  async eom(): Promise<EomResult> {
    this.send(pkt.eob());
    const replies: Packet[] = [];
    for (;;) {
      const p = await this.next();
      replies.push(p);
      if (FINAL.has(p.cmd)) return summarizeEom(replies);
    }
  }

  /**
   * Sends one event the way Postfix does: waits for the reply unless the milter asked
   * for no reply (`noReplyFlag` negotiated). Throws unless the reply is CONTINUE.
   */
  async event(packet: Buffer, noReplyFlag: number): Promise<void> {
    this.send(packet);
    if ((this.protocol & noReplyFlag) !== 0) return;
    const r = await this.next();
    if (r.cmd !== SMFIR.CONTINUE) throw new Error(`event 0x${packet[4]!.toString(16)}: reply ${String.fromCharCode(r.cmd)}, not CONTINUE`);
  }

  /** One transaction the way Postfix sends it, then ABORT (as Postfix does after every transaction). */
  async message(spec: MessageSpec = {}): Promise<EomResult> {
    const qid = spec.queueId ?? 'ABC123';
    this.send(pkt.macro('M', { i: qid, ...(spec.login !== undefined ? { '{auth_authen}': spec.login, '{auth_type}': 'PLAIN' } : {}) }));
    await this.event(pkt.mail(`<${spec.from ?? 'alice@example.jp'}>`, 'SIZE=100'), 0x4000);
    for (const r of spec.rcpts ?? ['bob@example.com']) {
      this.send(pkt.macro('R', { i: qid }));
      await this.event(pkt.rcpt(`<${r}>`), 0x8000);
    }
    this.send(pkt.macro('T', { i: qid }));
    await this.event(pkt.data(), 0x10000);
    for (const [n, v] of spec.headers ?? [['From', ' Alice <alice@example.jp>'], ['Subject', ' hello']]) await this.event(pkt.header(n, v), 0x80);
    this.send(pkt.macro('N', { i: qid }));
    await this.event(pkt.eoh(), 0x40000);
    const body = spec.body ?? 'Hello Bob.\r\n';
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
    for (let i = 0; i < bytes.length; i += 65535) await this.event(pkt.body(bytes.subarray(i, i + 65535)), 0x80000);
    this.send(pkt.macro('E', { i: qid }));
    const result = await this.eom();
    this.send(pkt.abort());
    return result;
  }

  /** Connect-stage events as Postfix sends them (macros, CONNECT, HELO), honouring NR flags. */
  async hello(address = '203.0.113.5', name = 'client.example'): Promise<void> {
    this.send(pkt.macro('C', { j: 'mx', '{daemon_name}': 'ORIGINATING' }));
    await this.event(pkt.connect(name, address), 0x1000);
    await this.event(pkt.helo(name), 0x2000);
  }

  close(): void {
    this.socket.destroy();
  }
}
