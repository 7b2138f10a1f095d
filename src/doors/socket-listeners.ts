import { existsSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { formatListenAddress, parseListenAddress, type ListenAddress } from './listen-address.ts';

// The listening half every socket front door shares (policy, milter): TCP or unix
// listeners from config, the set of open connections, and a close that ends them all.

export interface SocketListeners {
  /** Listening addresses, with the real port when 0 was asked for. */
  readonly addresses: readonly string[];
  readonly sockets: ReadonlySet<net.Socket>;
  close(): Promise<void>;
}

/**
 * Listens on every `listen` address and calls `onConnection(socket, listener)` for each
 * client. On a failure to listen, the listeners opened so far are closed again.
 */
export async function openListeners<L extends { readonly listen: string }>(
  door: string,
  listeners: readonly L[],
  onConnection: (socket: net.Socket, listener: L) => void,
  warn: (msg: string) => void,
): Promise<SocketListeners> {
  const sockets = new Set<net.Socket>();
  const servers: net.Server[] = [];
  const addresses: string[] = [];
  const closeServers = (): Promise<unknown> => Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  try {
    for (const listener of listeners) {
      const addr = parseListenAddress(listener.listen);
      if (addr instanceof Error) throw addr;
      const server = net.createServer({ noDelay: true }, (socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        onConnection(socket, listener);
      });
      server.on('error', (err) => warn(`${door} listener ${listener.listen}: ${err.message}`));
      await listen(server, addr);
      servers.push(server);
      const bound = server.address();
      addresses.push(
        typeof bound === 'object' && bound !== null ? formatListenAddress({ kind: 'tcp', host: bound.address, port: bound.port }) : formatListenAddress(addr),
      );
    }
  } catch (err) {
    await closeServers();
    throw err;
  }
  return {
    addresses,
    sockets,
    async close() {
      for (const s of sockets) s.destroy();
      await closeServers();
    },
  };
}

function listen(server: net.Server, addr: ListenAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (addr.kind === 'unix') {
      // A socket file left by a crashed run would make listen() fail.
      if (existsSync(addr.path)) unlinkSync(addr.path);
      // Postfix's smtpd and cleanup run as user postfix and must be able to connect.
      server.listen({ path: addr.path, readableAll: true, writableAll: true }, done);
    } else {
      server.listen(addr.port, addr.host, done);
    }
  });
}
