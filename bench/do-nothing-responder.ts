// The ceiling: a minimal Node policy server that parses each request into attributes
// (like any real server must) and answers `action=DUNNO`. No state, no logging.
// Run: node --import tsx bench/do-nothing-responder.ts --port 10040
// Prints "do-nothing: ready" on stdout once it listens.
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, waitForPort } from './lib/proc.ts';
import { childServer, spawnLogged, waitForLine, type ServerKind } from './lib/server.ts';

const REPLY = 'action=DUNNO\n\n';
const MAX_REQUEST = 16384;

function parse(request: string): Map<string, string> {
  const attrs = new Map<string, string>();
  let start = 0;
  for (let i = 0; i < 256 && start < request.length; i++) {
    let nl = request.indexOf('\n', start);
    if (nl < 0) nl = request.length;
    const eq = request.indexOf('=', start);
    if (eq > start && eq < nl && !attrs.has(request.slice(start, eq))) {
      attrs.set(request.slice(start, eq), request.slice(eq + 1, nl));
    }
    start = nl + 1;
  }
  return attrs;
}

export function createDoNothingServer(): net.Server {
  return net.createServer((sock) => {
    sock.setNoDelay(true);
    sock.setEncoding('latin1');
    let buf = '';
    sock.on('data', (chunk: string) => {
      buf += chunk;
      // Bounded: each iteration consumes one request from the buffer.
      for (let i = 0; i < 64; i++) {
        const end = buf.indexOf('\n\n');
        if (end < 0) break;
        const attrs = parse(buf.slice(0, end + 1));
        buf = buf.slice(end + 2);
        if (attrs.get('request') !== 'smtpd_access_policy') {
          sock.destroy();
          return;
        }
        sock.write(REPLY);
      }
      if (buf.length > MAX_REQUEST) sock.destroy();
    });
    sock.on('error', () => sock.destroy());
  });
}

/** For run.ts: the responder in its own Node process. */
export const doNothingKind: ServerKind = {
  name: 'do-nothing',
  slow: false,
  enforces: false,
  role: 'ceiling',
  unavailable: () => null,
  info: () => ({
    name: 'do-nothing',
    version: `node ${process.version}`,
    does: 'Parses each request into attributes and answers action=DUNNO. No state. The ceiling for a Node policy server here.',
    config: 'node --import tsx bench/do-nothing-responder.ts --port PORT',
  }),
  start: async () => {
    const port = await freePort();
    const self = fileURLToPath(import.meta.url);
    const { child, output } = spawnLogged(process.execPath, ['--import', 'tsx', self, '--port', String(port)], path.dirname(path.dirname(self)));
    await waitForLine(child, /do-nothing: ready/, 20_000, output);
    await waitForPort(port, 5000);
    return childServer('do-nothing', port, child, () => undefined);
  },
};

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } } });
  if (!values.port) throw new Error('--port is required');
  const srv = createDoNothingServer();
  srv.listen(Number(values.port), values.host, () => process.stdout.write('do-nothing: ready\n'));
  const stop = (): void => {
    srv.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
