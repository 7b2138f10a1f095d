import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, describe, test } from 'node:test';
import { MissingPrerequisiteError, findBinary, requireTools } from './requirements.ts';

describe('requireTools', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fumidai-req-'));
  const report = join(dir, 'skipped.txt');
  const saved = { ci: process.env['CI'], report: process.env['FUMIDAI_SKIP_REPORT'] };

  beforeEach(() => {
    delete process.env['CI'];
    process.env['FUMIDAI_SKIP_REPORT'] = report;
    rmSync(report, { force: true });
  });
  after(() => {
    if (saved.ci === undefined) delete process.env['CI'];
    else process.env['CI'] = saved.ci;
    if (saved.report === undefined) delete process.env['FUMIDAI_SKIP_REPORT'];
    else process.env['FUMIDAI_SKIP_REPORT'] = saved.report;
    rmSync(dir, { recursive: true, force: true });
  });

  test('runs when everything is there', async () => {
    const server = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const got = await requireTools('s', { bin: ['sh', '/bin/sh'], tcp: [{ host: '127.0.0.1', port, name: 'X' }], checks: [{ name: 'c', ok: () => true }] }, 'hint');
      assert.deepEqual(got, { skip: false });
    } finally {
      server.close();
    }
    assert.throws(() => readFileSync(report), /ENOENT/, 'nothing reported');
  });

  test('skips locally and records one line naming what is missing and how to install it', async () => {
    const closed = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => closed.once('listening', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));

    const got = await requireTools(
      'redis store',
      { bin: ['sh', 'no-such-program-fumidai'], tcp: [{ host: '127.0.0.1', port, name: 'Redis' }], checks: [{ name: 'libfoo', ok: () => false }] },
      'apt-get install -y redis-server',
    );
    const line = `redis store: needs no-such-program-fumidai, libfoo, Redis at 127.0.0.1:${port}; install with: apt-get install -y redis-server`;
    assert.deepEqual(got, { skip: line });
    assert.equal(readFileSync(report, 'utf8'), `${line}\n`);
  });

  test('under CI=true a missing prerequisite throws', async () => {
    process.env['CI'] = 'true';
    await assert.rejects(requireTools('s', { bin: ['no-such-program-fumidai'] }, 'hint'), MissingPrerequisiteError);
    assert.throws(() => readFileSync(report), /ENOENT/);
  });

  test('findBinary looks in PATH and checks absolute paths', () => {
    assert.equal(findBinary('/bin/sh'), '/bin/sh');
    assert.ok(findBinary('sh')?.endsWith('/sh'));
    assert.equal(findBinary('/nonexistent/x'), null);
  });
});
