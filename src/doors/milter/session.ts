import {
  ACCEPT,
  CONTINUE,
  commandName,
  DISCARD,
  encodeAddHeader,
  encodeOptneg,
  encodeQuarantine,
  encodeReplyCode,
  MILTER_VERSION,
  MilterPayloadError,
  parseArgs,
  parseConnect,
  parseHeader,
  parseMacro,
  parseOptneg,
  REJECT,
  SMFIC,
  SMFIF,
  SMFIM,
  SMFIP,
  TEMPFAIL,
  type ConnectInfo,
  type Packet,
} from './codec.ts';

// One milter connection's state machine (docs/milter.md). It negotiates, keeps the
// macros and the current transaction, replies where the negotiated protocol expects a
// reply, and at end of message hands what it collected to `onMessage` and encodes the
// actions that come back. It knows nothing about the engine (translate.ts does) nor
// about sockets (server.ts does).
//
// Postfix quirks handled here: ABORT after every transaction, even after EOM, and
// several in a row; macros sent for events we opted out of; header values with their
// leading space only when HDR_LEADSPC was negotiated; folded headers with bare LF.
// A command out of the usual order starts or ends a transaction as libmilter would,
// rather than failing: miltertest and Sendmail skip stages. Bytes that do not parse
// end the connection (MilterPayloadError).

/** What we ask for; each bit only if the MTA offered it. */
export const WANTED_ACTIONS = SMFIF.ADDHDRS | SMFIF.QUARANTINE | SMFIF.SETSYMLIST;
/**
 * No SMTP unknown-command events; header values with their leading space, so the
 * message is rebuilt byte for byte. Deliberately NOT the NR_* ("no reply") flags,
 * although the door decides only at end of message: measured with Postfix 3.7, 20
 * messages over 2 sessions took 640 ms with NR_* and 182 ms without — about 40 ms more
 * per message, the size of one TCP delayed-ACK wait behind Nagle's algorithm (Postfix
 * buffers events it expects no reply to and writes them later, separately from what
 * follows). A CONTINUE per event costs a loopback round trip and carries the ACK.
 */
export const WANTED_PROTOCOL = SMFIP.NOUNKNOWN | SMFIP.HDR_LEADSPC;

/** Macros we ask for per stage (SETSYMLIST). Postfix falls back to main.cf for other stages. */
export const SYMLISTS: readonly (readonly [number, string])[] = [
  [SMFIM.CONNECT, '{daemon_name} {client_addr} {client_name} j'],
  [SMFIM.ENVFROM, '{auth_authen} {auth_type} {client_addr} i'],
  [SMFIM.ENVRCPT, 'i'],
  [SMFIM.DATA, 'i'],
  [SMFIM.EOH, 'i'],
  [SMFIM.EOM, 'i {auth_authen} {auth_type} {client_addr}'],
];

/** What one transaction looked like, handed to onMessage at end of message. */
export interface MilterMessage {
  /** 1 for the first message of the connection. */
  readonly seq: number;
  readonly connect: ConnectInfo | null;
  readonly helo: string | null;
  /** A macro's value by name ("i", "{auth_authen}" or "auth_authen"); latest stage first. */
  macro(name: string): string | undefined;
  /** MAIL FROM as the client typed it, usually "<a@b>" ("" when the MTA sent none). */
  readonly mailFrom: string;
  /** RCPT TO arguments as typed, one per recipient the MTA passed on. */
  readonly recipients: readonly string[];
  /** Header fields as [name, value], value without the one space after the colon. */
  readonly headers: readonly (readonly [string, string])[];
  /** The message rebuilt (headers, blank line, body; CRLF), at most maxMessageBytes. */
  readonly raw: Buffer;
  /** True when headers or body went past maxMessageBytes and `raw` is a prefix. */
  readonly truncated: boolean;
  /** Size of the whole message as rebuilt, including what was not kept. */
  readonly size: number;
}

/** What to do at end of message, in order; the last one is final. */
export type EomAction =
  | { readonly type: 'addHeader'; readonly name: string; readonly value: string }
  | { readonly type: 'quarantine'; readonly reason: string }
  | { readonly type: 'continue' }
  | { readonly type: 'accept' }
  | { readonly type: 'discard' }
  | { readonly type: 'tempfail' }
  | { readonly type: 'reject' }
  /** A complete "ddd x.y.z text" line from formatReply(). */
  | { readonly type: 'reply'; readonly text: string };

export interface SessionOptions {
  /** How much of a message (headers + body) is kept for the decision. */
  readonly maxMessageBytes: number;
  readonly onMessage: (message: MilterMessage) => Promise<readonly EomAction[]>;
  /** Something worth an operator's attention that does not end the connection. */
  readonly warn?: (msg: string) => void;
}

/** Thrown (as MilterPayloadError) for sequences no MTA sends; ends the connection. */
function protocolError(msg: string): MilterPayloadError {
  return new MilterPayloadError(msg);
}

const MESSAGE_STAGES = [SMFIC.MAIL, SMFIC.RCPT, SMFIC.DATA, SMFIC.HEADER, SMFIC.EOH, SMFIC.BODY, SMFIC.BODYEOB] as const;
const LOOKUP_ORDER = [SMFIC.BODYEOB, SMFIC.BODY, SMFIC.EOH, SMFIC.HEADER, SMFIC.DATA, SMFIC.RCPT, SMFIC.MAIL, SMFIC.HELO, SMFIC.CONNECT, SMFIC.UNKNOWN] as const;

function macroKey(name: string): string {
  return name.length > 2 && name.startsWith('{') && name.endsWith('}') ? name.slice(1, -1) : name;
}

class Transaction {
  mailFrom = '';
  readonly recipients: string[] = [];
  readonly headers: [string, string][] = [];
  private readonly kept: Buffer[] = [];
  private keptBytes = 0;
  size = 0;
  truncated = false;
  endOfHeaders = false;

  constructor(private readonly cap: number) {}

  /** Counts bytes of the rebuilt message; keeps them while under the cap. */
  append(bytes: Buffer): void {
    this.size += bytes.length;
    if (this.truncated) return;
    const room = this.cap - this.keptBytes;
    if (bytes.length <= room) {
      this.kept.push(bytes);
      this.keptBytes += bytes.length;
    } else {
      if (room > 0) this.kept.push(bytes.subarray(0, room));
      this.keptBytes = this.cap;
      this.truncated = true;
    }
  }

  header(name: string, rawValue: string, leadingSpace: boolean): void {
    const line = `${name}:${leadingSpace ? rawValue : ` ${rawValue}`}`.replace(/\r?\n/g, '\r\n');
    this.append(Buffer.from(`${line}\r\n`, 'utf8'));
    // Once over the cap, further headers are counted but not kept (bounded memory).
    if (!this.truncated) this.headers.push([name, leadingSpace && rawValue.startsWith(' ') ? rawValue.slice(1) : rawValue]);
  }

  endHeaders(): void {
    if (this.endOfHeaders) return;
    this.endOfHeaders = true;
    this.append(Buffer.from('\r\n'));
  }

  raw(): Buffer {
    return this.kept.length === 1 ? this.kept[0]! : Buffer.concat(this.kept, this.keptBytes);
  }
}

export type HandleResult = readonly Buffer[] | 'close' | Promise<readonly Buffer[]>;

export class MilterSession {
  private negotiated = false;
  private actions = 0;
  private protocol = 0;
  private connectInfo: ConnectInfo | null = null;
  private heloName: string | null = null;
  private readonly macros = new Map<number, Map<string, string>>();
  private tx: Transaction | null = null;
  private seq = 0;
  private warnedNoQuarantine = false;
  private warnedNoHeaders = false;

  constructor(private readonly options: SessionOptions) {}

  /** Negotiated protocol bits (for tests and logs). */
  get protocolFlags(): number {
    return this.protocol;
  }

  get actionFlags(): number {
    return this.actions;
  }

  /** Number of the transaction in progress or last finished. */
  get messages(): number {
    return this.seq;
  }

  /**
   * Handles one packet: the replies to send (possibly none), 'close' for QUIT, or a
   * promise of replies at end of message. Throws MilterPayloadError on bad input.
   */
  handle(p: Packet): HandleResult {
    if (!this.negotiated && p.cmd !== SMFIC.OPTNEG) {
      // Postfix and Sendmail always start with OPTNEG; anything else is not an MTA.
      throw protocolError(`${commandName(p.cmd)} before option negotiation`);
    }
    switch (p.cmd) {
      case SMFIC.OPTNEG:
        return [this.negotiate(p.data)];
      case SMFIC.MACRO:
        this.macro(p.data);
        return [];
      case SMFIC.CONNECT: {
        const info = parseConnect(p.data);
        if (info instanceof MilterPayloadError) throw info;
        this.connectInfo = info;
        return this.reply(SMFIP.NR_CONN);
      }
      case SMFIC.HELO: {
        const s = parseArgs(p.data, 'HELO');
        if (s instanceof MilterPayloadError) throw s;
        this.heloName = s[0]!;
        return this.reply(SMFIP.NR_HELO);
      }
      case SMFIC.MAIL: {
        const args = parseArgs(p.data, 'MAIL');
        if (args instanceof MilterPayloadError) throw args;
        this.begin().mailFrom = args[0]!;
        return this.reply(SMFIP.NR_MAIL);
      }
      case SMFIC.RCPT: {
        const args = parseArgs(p.data, 'RCPT');
        if (args instanceof MilterPayloadError) throw args;
        const tx = this.current();
        // Bounded like the rest of the message: a recipient list only adds a count past the cap.
        if (tx.recipients.length < 100_000) tx.recipients.push(args[0]!);
        return this.reply(SMFIP.NR_RCPT);
      }
      case SMFIC.DATA:
        if (p.data.length > 0) throw protocolError('DATA with payload');
        this.current();
        return this.reply(SMFIP.NR_DATA);
      case SMFIC.HEADER: {
        const h = parseHeader(p.data);
        if (h instanceof MilterPayloadError) throw h;
        this.current().header(h[0], h[1], (this.protocol & SMFIP.HDR_LEADSPC) !== 0);
        return this.reply(SMFIP.NR_HDR);
      }
      case SMFIC.EOH:
        this.current().endHeaders();
        return this.reply(SMFIP.NR_EOH);
      case SMFIC.BODY: {
        const tx = this.current();
        tx.endHeaders();
        tx.append(p.data);
        return this.reply(SMFIP.NR_BODY);
      }
      case SMFIC.BODYEOB:
        // Postfix never attaches data to EOB; Sendmail may send a last body chunk with it.
        if (p.data.length > 0) this.current().append(p.data);
        return this.endOfMessage();
      case SMFIC.UNKNOWN: {
        const s = parseArgs(p.data, 'UNKNOWN');
        if (s instanceof MilterPayloadError) throw s;
        return this.reply(SMFIP.NR_UNKN);
      }
      case SMFIC.ABORT:
        // In any state, silently, as often as it comes (Postfix: after every transaction).
        this.abort();
        return [];
      case SMFIC.QUIT:
        return 'close';
      case SMFIC.QUIT_NC:
        // The MTA reuses the socket for a new SMTP connection: forget the old one.
        this.abort();
        this.macros.clear();
        this.connectInfo = null;
        this.heloName = null;
        return [];
      default:
        throw protocolError(`unexpected command ${commandName(p.cmd)}`);
    }
  }

  private negotiate(data: Buffer): Buffer {
    if (this.negotiated) throw protocolError('second option negotiation');
    const offer = parseOptneg(data);
    if (offer instanceof MilterPayloadError) throw offer;
    if (offer.version < 2) throw protocolError(`MTA speaks milter protocol version ${offer.version}; need 2 or later`);
    const version = Math.min(offer.version, MILTER_VERSION);
    this.actions = WANTED_ACTIONS & offer.actions;
    // Protocol bits beyond version 2 exist only from version 6 (Postfix withholds them otherwise).
    this.protocol = version >= 6 ? WANTED_PROTOCOL & offer.protocol : 0;
    this.negotiated = true;
    const symlists = version >= 6 && (this.actions & SMFIF.SETSYMLIST) !== 0 ? SYMLISTS : undefined;
    if (symlists === undefined) this.actions &= ~SMFIF.SETSYMLIST;
    return encodeOptneg({ version, actions: this.actions, protocol: this.protocol, ...(symlists ? { symlists } : {}) });
  }

  private macro(data: Buffer): void {
    const m = parseMacro(data);
    if (m instanceof MilterPayloadError) throw m;
    if (m.stage === SMFIC.MAIL) {
      // A new transaction's macros: the previous message's later stages are stale.
      for (const s of MESSAGE_STAGES) this.macros.delete(s);
    }
    const map = new Map<string, string>();
    for (const [name, value] of m.macros) map.set(macroKey(name), value);
    this.macros.set(m.stage, map);
  }

  private reply(noReplyFlag: number): readonly Buffer[] {
    return (this.protocol & noReplyFlag) !== 0 ? [] : [CONTINUE];
  }

  private begin(): Transaction {
    this.tx = new Transaction(this.options.maxMessageBytes);
    this.seq++;
    return this.tx;
  }

  /** The transaction in progress; a stage without MAIL starts one (miltertest, Sendmail skip stages). */
  private current(): Transaction {
    return this.tx ?? this.begin();
  }

  private abort(): void {
    this.tx = null;
    for (const s of MESSAGE_STAGES) this.macros.delete(s);
  }

  private async endOfMessage(): Promise<readonly Buffer[]> {
    const tx = this.current();
    tx.endHeaders();
    this.tx = null;
    // A snapshot: the ABORT that follows every transaction clears the live macros.
    const macros = new Map<string, string>();
    for (const stage of [...LOOKUP_ORDER].reverse()) for (const [k, v] of this.macros.get(stage) ?? []) macros.set(k, v);
    const message: MilterMessage = {
      seq: this.seq,
      connect: this.connectInfo,
      helo: this.heloName,
      macro: (name) => macros.get(macroKey(name)),
      mailFrom: tx.mailFrom,
      recipients: tx.recipients,
      headers: tx.headers,
      raw: tx.raw(),
      truncated: tx.truncated,
      size: tx.size,
    };
    let actions: readonly EomAction[];
    try {
      actions = await this.options.onMessage(message);
    } catch (err) {
      this.options.warn?.(`decision failed, message tempfailed: ${(err as Error).message}`);
      return [TEMPFAIL];
    }
    return this.encodeActions(actions);
  }

  /** Encodes end-of-message actions within what was negotiated. */
  encodeActions(actions: readonly EomAction[]): readonly Buffer[] {
    const out: Buffer[] = [];
    const leadingSpace = (this.protocol & SMFIP.HDR_LEADSPC) !== 0;
    for (const a of actions) {
      switch (a.type) {
        case 'addHeader':
          if ((this.actions & SMFIF.ADDHDRS) === 0) {
            if (!this.warnedNoHeaders) this.options.warn?.('the MTA did not allow adding headers; pool and sender headers are not added');
            this.warnedNoHeaders = true;
            break;
          }
          // Without HDR_LEADSPC the MTA puts the space after the colon itself.
          out.push(encodeAddHeader(a.name, leadingSpace ? ` ${a.value}` : a.value));
          break;
        case 'quarantine':
          if ((this.actions & SMFIF.QUARANTINE) === 0) {
            // Fail safe: a message to be held is not sent on; the client retries later.
            if (!this.warnedNoQuarantine) this.options.warn?.('the MTA did not allow quarantine; messages to hold are tempfailed instead');
            this.warnedNoQuarantine = true;
            return [TEMPFAIL];
          }
          out.push(encodeQuarantine(a.reason));
          break;
        case 'continue':
          out.push(CONTINUE);
          return out;
        case 'accept':
          out.push(ACCEPT);
          return out;
        case 'discard':
          return [DISCARD];
        case 'tempfail':
          return [TEMPFAIL];
        case 'reject':
          return [REJECT];
        case 'reply':
          return [encodeReplyCode(a.text)];
      }
    }
    out.push(CONTINUE);
    return out;
  }
}
