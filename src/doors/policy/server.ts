import net from 'node:net';
import type { FumidaiConfig, PolicyListener } from '../../config/config.ts';
import type { Engine } from '../../engine/engine.ts';
import { openListeners } from '../socket-listeners.ts';
import { PolicyFrameError, PolicyFrameParser, type PolicyRequest } from './frame-parser.ts';
import { toAction, toEvent, type PolicyTransaction } from './translate.ts';

// The Postfix SMTPD access policy delegation front door. Connections are persistent
// and carry one request at a time (Postfix waits for each reply). On any trouble the
// server logs and closes the connection without replying: Postfix then retries, which
// is safer than an answer it might misread (SMTPD_POLICY_README).

export interface PolicyLogger {
  warn(msg: string): void;
}

export interface PolicyServerHandle {
  /** Listening addresses, with the real port when 0 was asked for. */
  readonly addresses: readonly string[];
  readonly connections: () => number;
  close(): Promise<void>;
}

const DUNNO = Buffer.from('action=DUNNO\n\n');

export async function startPolicyServer(engine: Engine, config: FumidaiConfig, log: PolicyLogger): Promise<PolicyServerHandle> {
  const listeners = await openListeners('policy', config.policy.listeners, (socket, listener) => handleConnection(socket, listener, engine, config, log), (m) => log.warn(m));
  return {
    addresses: listeners.addresses,
    connections: () => listeners.sockets.size,
    close: () => listeners.close(),
  };
}

function handleConnection(
  socket: net.Socket,
  listener: PolicyListener,
  engine: Engine,
  config: FumidaiConfig,
  log: PolicyLogger,
): void {
  const peer = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : listener.listen;
  const parser = new PolicyFrameParser(config.policy.maxRequestBytes);
  const tx: PolicyTransaction = { instance: '', admitted: 0, tried: 0 };
  const queue: PolicyRequest[] = [];
  let busy = false;
  let closed = false;

  socket.setTimeout(config.policy.idleTimeout * 1000);
  socket.on('timeout', () => socket.destroy());
  socket.on('error', () => socket.destroy());
  socket.on('close', () => {
    closed = true;
  });

  const drop = (why: string): void => {
    log.warn(`policy client ${peer}: ${why}; connection closed without reply`);
    closed = true;
    socket.destroy();
  };

  const run = async (): Promise<void> => {
    busy = true;
    while (queue.length > 0 && !closed) {
      const req = queue.shift()!;
      let reply: Buffer;
      if (req.get('request') !== 'smtpd_access_policy') {
        drop(`unknown request type "${(req.get('request') ?? '').slice(0, 40)}"`);
        break;
      }
      try {
        const event = toEvent(req, engine.now(), tx, listener.context);
        if (event === null) {
          reply = DUNNO;
        } else {
          const verdict = await engine.decide(event);
          if (event.kind === 'rcpt' && verdict.action === 'accept') tx.admitted++;
          reply = verdict.action === 'accept' ? DUNNO : Buffer.from(`action=${toAction(verdict)}\n\n`);
        }
      } catch (err) {
        drop(`internal error: ${(err as Error).message}`);
        break;
      }
      if (!closed) socket.write(reply);
    }
    busy = false;
  };

  socket.on('data', (chunk: Buffer) => {
    if (closed) return;
    try {
      for (const req of parser.push(chunk)) queue.push(req);
    } catch (err) {
      drop(err instanceof PolicyFrameError ? err.message : `unexpected: ${(err as Error).message}`);
      return;
    }
    if (!busy && queue.length > 0) void run();
  });
}
