// The milter driven by miltertest (OpenDKIM's MTA simulator, Debian package
// `miltertest`): an independent client implementation of the protocol. Each script in
// test/miltertest/*.lua runs against our milter server over TCP and exits non-zero on
// any unexpected reply.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { startMilterServer, type MilterServerHandle } from '../../src/doors/milter/server.ts';
import { senderToken } from '../../src/doors/milter/translate.ts';
import { AUTH_REQUIRED, render, suspended } from '../../src/engine/replies.ts';
import { senderId } from '../../src/engine/types.ts';
import { requireTools } from '../support/requirements.ts';
import { testEngine, type TestEngine } from '../miltertest/test-engine.ts';

const SUITE = 'milter with miltertest';
const MILTERTEST = '/usr/bin/miltertest';
const SCRIPTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'miltertest');
const SECRET = 'miltertest secret, not for production';
const req = await requireTools(SUITE, { bin: [MILTERTEST] }, 'sudo bash scripts/install-test-deps.sh');

function miltertest(script: string, vars: Record<string, string>): Promise<{ code: number; out: string }> {
  const args = ['-s', join(SCRIPTS, script)];
  for (const [k, v] of Object.entries({ scriptdir: SCRIPTS, ...vars })) args.push('-D', `${k}=${v}`);
  return new Promise((resolve) => {
    execFile(MILTERTEST, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, out: `${stdout}${stderr}` });
    });
  });
}

describe(SUITE, { ...req, timeout: 60_000 }, () => {
  let te: TestEngine;
  let server: MilterServerHandle;
  let vars: Record<string, string>;

  before(async () => {
    te = testEngine({
      milter: { listeners: [{ listen: '127.0.0.1:0' }], senderTokenHeader: 'X-Fumidai-Sender', senderTokenSecret: SECRET },
    });
    server = await startMilterServer(te.engine, te.config, { warn: () => undefined });
    const port = server.addresses[0]!.split(':').pop()!;
    await te.engine.suspendByOperator(senderId('mallory@example.jp'), 'test', 'miltertest');
    const languages = te.config.replies.languages;
    vars = {
      socket: `inet:${port}@127.0.0.1`,
      token: senderToken(SECRET, senderId('alice@example.jp')),
      suspended: 'mallory@example.jp',
      suspendedText: render(suspended(te.config.replies.support), languages),
      authText: render(AUTH_REQUIRED, languages),
    };
  });
  after(async () => {
    await server?.close();
    await te?.close();
  });

  for (const script of ['accept.lua', 'refuse.lua', 'hold.lua', 'pool.lua']) {
    test(script, async () => {
      const r = await miltertest(script, vars);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, new RegExp(`${script.replace('.', '\\.')}: ok`));
    });
  }
});
