// A minimal SMTP server that accepts every message and records it, so tests can
// assert which messages a real MTA delivered. Plain SMTP on loopback; no TLS, no AUTH,
// no PIPELINING (commands are still read correctly if a client pipelines).

import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { keepAlive } from './keep-alive.ts';

export interface SinkMessage {
  /** Envelope sender, without the angle brackets ('' for the null sender). */
  readonly mailFrom: string;
  /** Envelope recipients, without angle brackets. */
  readonly rcptTo: readonly string[];
  /** What the client said in EHLO/HELO. */
  readonly helo: string;
  /** The message as received, CRLF line ends, dot-unstuffed, without the final ".". */
  readonly raw: Buffer;
  /** `raw` decoded as UTF-8. */
  readonly text: string;
  readonly receivedAt: Date;
  /** The first header named `name` (case-insensitive), unfolded, or undefined. */
  header(name: string): string | undefined;
}

export interface SmtpSink {
  readonly host: string;
  readonly port: number;
  /** Messages received so far, in order of arrival. */
  messages(): readonly SinkMessage[];
  /** Resolves once at least `count` messages arrived; rejects after timeoutMs. */
  waitFor(count: number, timeoutMs?: number): Promise<readonly SinkMessage[]>;
  /** Resolves with the first message (already received or arriving) matching `match`. */
  waitUntil(match: (m: SinkMessage) => boolean, timeoutMs?: number): Promise<SinkMessage>;
  /** Forgets the received messages. */
  reset(): void;
  close(): Promise<void>;
}

export interface SmtpSinkOptions {
  /** Greeting name; must differ from the sending MTA's myhostname (loop detection). */
  readonly hostname?: string;
  readonly host?: string;
  /** 0 = any free port. */
  readonly port?: number;
}

function headerOf(text: string, name: string): string | undefined {
  const end = text.search(/\r?\n\r?\n/);
  const head = end < 0 ? text : text.slice(0, end);
  const unfolded = head.replace(/\r?\n[ \t]+/g, ' ');
  const want = name.toLowerCase();
  for (const line of unfolded.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === want) return line.slice(colon + 1).trim();
  }
  return undefined;
}

function makeMessage(mailFrom: string, rcptTo: string[], helo: string, raw: Buffer): SinkMessage {
  const text = raw.toString('utf8');
  return {
    mailFrom,
    rcptTo,
    helo,
    raw,
    text,
    receivedAt: new Date(),
    header: (name: string) => headerOf(text, name),
  };
}

/** `<a@b> SIZE=12` → `a@b` */
function pathArgument(rest: string): string {
  const m = /^\s*<([^>]*)>/.exec(rest);
  if (m !== null) return m[1] ?? '';
  return rest.trim().split(/\s+/)[0] ?? '';
}

export async function startSmtpSink(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const hostname = options.hostname ?? 'sink.fumidai-test.invalid';
  const host = options.host ?? '127.0.0.1';
  const received: SinkMessage[] = [];
  const waiters = new Set<() => void>();
  const sockets = new Set<Socket>();
  let counter = 0;

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.unref();
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(60_000, () => socket.destroy());

    let buffer: Buffer = Buffer.alloc(0);
    let inData = false;
    let dataLines: Buffer[] = [];
    let helo = '';
    let mailFrom: string | null = null;
    let rcptTo: string[] = [];

    const reply = (line: string): void => {
      if (!socket.destroyed) socket.write(line + '\r\n');
    };
    const reset = (): void => {
      mailFrom = null;
      rcptTo = [];
    };

    const onCommand = (line: string): void => {
      const verb = (line.split(' ', 1)[0] ?? '').toUpperCase();
      const rest = line.slice(verb.length);
      switch (verb) {
        case 'EHLO':
          helo = rest.trim();
          reset();
          reply(`250-${hostname}`);
          reply('250-8BITMIME');
          reply('250-SMTPUTF8');
          reply('250 SIZE 104857600');
          return;
        case 'HELO':
          helo = rest.trim();
          reset();
          reply(`250 ${hostname}`);
          return;
        case 'MAIL': {
          const m = /^\s*FROM:(.*)$/i.exec(rest);
          if (m === null) return reply('501 5.5.4 Syntax: MAIL FROM:<address>');
          mailFrom = pathArgument(m[1] ?? '');
          rcptTo = [];
          return reply('250 2.1.0 Ok');
        }
        case 'RCPT': {
          const m = /^\s*TO:(.*)$/i.exec(rest);
          if (mailFrom === null) return reply('503 5.5.1 Error: need MAIL command');
          if (m === null) return reply('501 5.5.4 Syntax: RCPT TO:<address>');
          rcptTo.push(pathArgument(m[1] ?? ''));
          return reply('250 2.1.5 Ok');
        }
        case 'DATA':
          if (mailFrom === null || rcptTo.length === 0) return reply('503 5.5.1 Error: need RCPT command');
          inData = true;
          dataLines = [];
          return reply('354 End data with <CR><LF>.<CR><LF>');
        case 'RSET':
          reset();
          return reply('250 2.0.0 Ok');
        case 'NOOP':
          return reply('250 2.0.0 Ok');
        case 'QUIT':
          reply('221 2.0.0 Bye');
          socket.end();
          return;
        default:
          return reply('502 5.5.2 Error: command not recognized');
      }
    };

    const onDataLine = (line: Buffer): void => {
      // line excludes CRLF
      if (line.length === 1 && line[0] === 0x2e) {
        inData = false;
        const raw = Buffer.concat(dataLines.flatMap((l) => [l, Buffer.from('\r\n')]));
        counter += 1;
        received.push(makeMessage(mailFrom ?? '', rcptTo, helo, raw));
        reset();
        reply(`250 2.0.0 Ok: queued as SINK${counter}`);
        for (const wake of [...waiters]) wake();
        return;
      }
      dataLines.push(line[0] === 0x2e ? line.subarray(1) : line);
    };

    socket.on('data', (chunk: Buffer) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      for (;;) {
        const nl = buffer.indexOf(0x0a);
        if (nl < 0) break;
        const end = nl > 0 && buffer[nl - 1] === 0x0d ? nl - 1 : nl;
        const line = buffer.subarray(0, end);
        buffer = buffer.subarray(nl + 1);
        if (inData) onDataLine(Buffer.from(line));
        else onCommand(line.toString('utf8'));
      }
    });

    reply(`220 ${hostname} ESMTP fumidai test sink`);
  });

  /** Resolves with probe()'s first defined value, re-checked on every arrival. */
  function waitOn<T>(probe: () => T | undefined, timeoutMs: number, describe: () => string): Promise<T> {
    const now = probe();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const value = probe();
        if (value === undefined) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(value);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(describe()));
      }, timeoutMs);
      waiters.add(check);
    });
  }

  server.listen(options.port ?? 0, host);
  await once(server, 'listening');
  // A test that forgot close() must still end; pending waits keep the process alive.
  server.unref();
  const port = (server.address() as AddressInfo).port;

  return {
    host,
    port,
    messages: () => [...received],
    waitFor(count: number, timeoutMs = 10_000): Promise<readonly SinkMessage[]> {
      return waitOn(
        () => (received.length >= count ? [...received] : undefined),
        timeoutMs,
        () => `SMTP sink: ${received.length} of ${count} messages arrived within ${timeoutMs} ms`,
      );
    },
    waitUntil(match: (m: SinkMessage) => boolean, timeoutMs = 10_000): Promise<SinkMessage> {
      return waitOn(
        () => received.find(match),
        timeoutMs,
        () => `SMTP sink: no matching message within ${timeoutMs} ms (${received.length} received)`,
      );
    },
    reset(): void {
      received.length = 0;
    },
    async close(): Promise<void> {
      for (const s of sockets) s.destroy();
      if (server.listening) await keepAlive(new Promise<void>((resolve) => server.close(() => resolve())));
    },
  };
}
