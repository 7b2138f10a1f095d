import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

// A tiny authoritative DNS responder on loopback UDP (RFC 1035 wire format), for testing
// DNS blocklist lookups against a real DNS exchange: A records from a table, NXDOMAIN for
// everything else, and names that are answered late or never (to test timeouts).

export interface DnsServer {
  readonly host: string;
  readonly port: number;
  /** "127.0.0.1:PORT", the form source.reputation.dnsbl.resolvers takes. */
  readonly address: string;
  /** Queries received so far (lower-cased names). */
  readonly queries: string[];
  /** Sets the A records of a name (lower-case, no trailing dot); [] removes it. */
  set(name: string, addresses: readonly string[]): void;
  /** Names whose queries get no answer at all (the client must time out). */
  silence(name: string): void;
  /** Answers every query after this many ms. */
  delay(ms: number): void;
  close(): Promise<void>;
}

function readName(msg: Buffer, offset: number): { name: string; end: number } {
  const labels: string[] = [];
  let i = offset;
  for (;;) {
    const len = msg[i];
    if (len === undefined) throw new Error('truncated name');
    if (len === 0) return { name: labels.join('.').toLowerCase(), end: i + 1 };
    if ((len & 0xc0) !== 0) throw new Error('compression in a question is not supported');
    labels.push(msg.toString('latin1', i + 1, i + 1 + len));
    i += 1 + len;
  }
}

function answer(query: Buffer, records: Map<string, readonly string[]>): { name: string; reply: Buffer } | null {
  if (query.length < 12) return null;
  const qdcount = query.readUInt16BE(4);
  if (qdcount !== 1) return null;
  const { name, end } = readName(query, 12);
  const qtype = query.readUInt16BE(end);
  const question = query.subarray(12, end + 4);
  const ips = records.get(name) ?? null;
  const answers = ips !== null && qtype === 1 ? ips : [];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0); // id
  // QR=1, opcode 0, AA=1, RD copied, RA=1; RCODE 3 (NXDOMAIN) when the name is unknown.
  const rd = query[2]! & 1;
  header[2] = 0x80 | 0x04 | rd;
  header[3] = 0x80 | (ips === null ? 3 : 0);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  const rrs = answers.map((ip) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the question's name
    rr.writeUInt16BE(1, 2); // A
    rr.writeUInt16BE(1, 4); // IN
    rr.writeUInt32BE(60, 6); // TTL
    rr.writeUInt16BE(4, 10);
    ip.split('.').forEach((p, k) => (rr[12 + k] = Number(p)));
    return rr;
  });
  return { name, reply: Buffer.concat([header, question, ...rrs]) };
}

export async function startDnsServer(): Promise<DnsServer> {
  const records = new Map<string, readonly string[]>();
  const silent = new Set<string>();
  const queries: string[] = [];
  let delayMs = 0;
  const socket: Socket = createSocket('udp4');
  socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    let a: ReturnType<typeof answer>;
    try {
      a = answer(msg, records);
    } catch {
      return;
    }
    if (a === null) return;
    queries.push(a.name);
    if (silent.has(a.name)) return;
    const send = (): void => socket.send(a!.reply, rinfo.port, rinfo.address);
    if (delayMs > 0) setTimeout(send, delayMs).unref();
    else send();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  socket.unref();
  const port = socket.address().port;
  return {
    host: '127.0.0.1',
    port,
    address: `127.0.0.1:${port}`,
    queries,
    set(name, addresses) {
      if (addresses.length === 0) records.delete(name.toLowerCase());
      else records.set(name.toLowerCase(), addresses);
    },
    silence(name) {
      silent.add(name.toLowerCase());
    },
    delay(ms) {
      delayMs = ms;
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
