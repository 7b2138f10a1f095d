import net from 'node:net';
import type { FumidaiConfig, MilterListener } from '../../config/config.ts';
import type { Engine } from '../../engine/engine.ts';
import { openListeners } from '../socket-listeners.ts';
import { MilterFrameDecoder, MilterFrameError, MilterPayloadError, type Packet } from './codec.ts';
import { MilterSession, type EomAction, type MilterMessage } from './session.ts';
import { toEomActions, toEvent, type TranslateOptions } from './translate.ts';

// The milter front door: TCP and unix listeners, one MilterSession per connection.
// Packets of a connection are handled strictly in order; while the engine decides at
// end of message the socket is paused, so a peer cannot make us buffer without bound.
// Anything that is not the milter protocol (bad length, unknown command, truncated
// payload, a stalled half packet) ends that connection and only that one; the MTA
// then applies its milter_default_action.

export interface MilterLogger {
  warn(msg: string): void;
}

export interface MilterServerHandle {
  /** Listening addresses, with the real port when 0 was asked for. */
  readonly addresses: readonly string[];
  readonly connections: () => number;
  /** Messages decided since start. */
  readonly messages: () => number;
  close(): Promise<void>;
}

export function translateOptions(config: FumidaiConfig, listener: MilterListener): TranslateOptions {
  const m = config.milter;
  return {
    ...(listener.context !== undefined ? { context: listener.context } : {}),
    countMessages: m.countMessages,
    poolHeader: m.poolHeader,
    senderTokenHeader: m.senderTokenHeader,
    senderTokenSecret: m.senderTokenSecret,
  };
}

export async function startMilterServer(engine: Engine, config: FumidaiConfig, log: MilterLogger): Promise<MilterServerHandle> {
  const stats = { messages: 0, connections: 0 };
  const optionsByListener = new Map(config.milter.listeners.map((l) => [l, translateOptions(config, l)]));
  const listeners = await openListeners(
    'milter',
    config.milter.listeners,
    (socket, listener) => handleConnection(socket, listener, optionsByListener.get(listener)!, engine, config, log, stats),
    (m) => log.warn(m),
  );
  return {
    addresses: listeners.addresses,
    connections: () => listeners.sockets.size,
    messages: () => stats.messages,
    close: () => listeners.close(),
  };
}

function handleConnection(
  socket: net.Socket,
  listener: MilterListener,
  options: TranslateOptions,
  engine: Engine,
  config: FumidaiConfig,
  log: MilterLogger,
  stats: { messages: number; connections: number },
): void {
  const connectionId = `m${(++stats.connections).toString(36)}.${Date.now().toString(36)}`;
  const peer = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : listener.listen;
  const decoder = new MilterFrameDecoder(config.milter.maxPacketBytes);
  const onMessage = async (msg: MilterMessage): Promise<readonly EomAction[]> => {
    const event = toEvent(msg, engine.now(), options, connectionId);
    const verdict = await engine.decide(event);
    stats.messages++;
    return toEomActions(verdict, event, options);
  };
  const session = new MilterSession({
    maxMessageBytes: config.milter.maxMessageBytes,
    onMessage,
    warn: (m) => log.warn(`milter client ${peer}: ${m}`),
  });
  const queue: Packet[] = [];
  let busy = false;
  let closed = false;
  let packetTimer: NodeJS.Timeout | null = null;

  socket.setTimeout(config.milter.idleTimeout * 1000);
  socket.on('timeout', () => drop(`idle for ${config.milter.idleTimeout}s`));
  socket.on('error', () => socket.destroy());
  socket.on('close', () => {
    closed = true;
    if (packetTimer !== null) clearTimeout(packetTimer);
  });

  function drop(why: string): void {
    if (closed) return;
    log.warn(`milter client ${peer}: ${why}; connection closed`);
    closed = true;
    socket.destroy();
  }

  const write = (replies: readonly Buffer[]): void => {
    if (closed || replies.length === 0) return;
    socket.write(replies.length === 1 ? replies[0]! : Buffer.concat(replies));
  };

  /** Runs queued packets in order; returns when the queue is empty or an EOM is pending. */
  const run = (): void => {
    while (queue.length > 0 && !closed) {
      const p = queue.shift()!;
      let result;
      try {
        result = session.handle(p);
      } catch (err) {
        drop(err instanceof MilterPayloadError ? `protocol error: ${err.message}` : `internal error: ${(err as Error).message}`);
        return;
      }
      if (result === 'close') {
        closed = true;
        socket.end();
        return;
      }
      if (result instanceof Promise) {
        busy = true;
        socket.pause();
        result.then(
          (replies) => {
            busy = false;
            write(replies);
            if (!closed) {
              socket.resume();
              run();
            }
          },
          (err: Error) => {
            busy = false;
            drop(`internal error: ${err.message}`);
          },
        );
        return;
      }
      write(result);
    }
  };

  socket.on('data', (chunk: Buffer) => {
    if (closed) return;
    let packets: Packet[];
    try {
      packets = decoder.push(chunk);
    } catch (err) {
      drop(err instanceof MilterFrameError ? `protocol error: ${err.message}` : `unexpected: ${(err as Error).message}`);
      return;
    }
    // A started packet must be completed soon (Postfix writes whole packets at once);
    // the clock restarts with every packet completed, so long streams are fine.
    if (packetTimer !== null && (packets.length > 0 || decoder.pendingBytes === 0)) {
      clearTimeout(packetTimer);
      packetTimer = null;
    }
    if (decoder.pendingBytes > 0 && packetTimer === null) {
      packetTimer = setTimeout(() => drop(`incomplete packet for ${config.milter.packetTimeout}s`), config.milter.packetTimeout * 1000);
    }
    for (const p of packets) queue.push(p);
    if (!busy) run();
  });
}
