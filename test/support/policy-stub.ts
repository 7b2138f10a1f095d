// A stand-in Postfix policy server (SMTPD access policy delegation protocol) for
// testing the harness and MTA configurations: it records every request and answers
// with whatever `decide` returns (default DUNNO). Not fumidai's server.

import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { keepAlive } from './keep-alive.ts';

export type PolicyRequest = Readonly<Record<string, string>>;

export interface PolicyStub {
  readonly host: string;
  readonly port: number;
  /** "inet:127.0.0.1:PORT", ready for check_policy_service. */
  readonly endpoint: string;
  /** Requests so far, in order. */
  requests(): readonly PolicyRequest[];
  /** Forgets the recorded requests. */
  reset(): void;
  close(): Promise<void>;
}

export interface PolicyStubOptions {
  /** The action text for a request (without "action="). Default "DUNNO". */
  readonly decide?: (request: PolicyRequest) => string;
}

export function parsePolicyRequest(block: string): PolicyRequest {
  const out: Record<string, string> = {};
  for (const line of block.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const name = line.slice(0, eq);
    if (!(name in out)) out[name] = line.slice(eq + 1);
  }
  return out;
}

export async function startPolicyStub(options: PolicyStubOptions = {}): Promise<PolicyStub> {
  const decide = options.decide ?? (() => 'DUNNO');
  const requests: PolicyRequest[] = [];
  const sockets = new Set<Socket>();

  const server = createServer((socket) => {
    sockets.add(socket);
    socket.unref();
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffer: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end < 0) break;
        const request = parsePolicyRequest(buffer.subarray(0, end).toString('utf8'));
        buffer = buffer.subarray(end + 2);
        requests.push(request);
        socket.write(`action=${decide(request)}\n\n`, 'utf8');
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  // A test that forgot close() must still end.
  server.unref();
  const port = (server.address() as AddressInfo).port;

  return {
    host: '127.0.0.1',
    port,
    endpoint: `inet:127.0.0.1:${port}`,
    requests: () => [...requests],
    reset: () => {
      requests.length = 0;
    },
    async close(): Promise<void> {
      for (const s of sockets) s.destroy();
      if (server.listening) await keepAlive(new Promise<void>((resolve) => server.close(() => resolve())));
    },
  };
}
