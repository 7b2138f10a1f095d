// The Rspamd adapter against a real Rspamd (Debian's rspamd 3.4): a private instance on
// loopback ports with a temporary config, Bayes statistics in a Redis database of its
// own (flushed at the end). Learns a few corpus messages, scans, and runs the content
// module with the adapter through the engine.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ContentAnalyser } from '../../src/classify/analysis.ts';
import { CORPUS_DATA } from '../../scripts/build-default-model.ts';
import { stripMboxFrom } from '../../src/classify/mime.ts';
import { combineProbabilities, RspamdClient, rspamdProbability } from '../../src/classify/rspamd.ts';
import { RSPAMD_BIN, startRspamd, type RspamdDaemon } from '../../src/classify/rspamd-daemon.ts';
import { senderId } from '../../src/engine/types.ts';
import { fixture, T0 } from '../support/engine-fixture.ts';
import { requireTools } from '../support/requirements.ts';

const req = await requireTools('rspamd adapter', { bin: [RSPAMD_BIN], tcp: [{ host: '127.0.0.1', port: 6379, name: 'Redis' }] }, 'sudo bash scripts/install-test-deps.sh');

function corpus(dir: string, n: number): Buffer[] {
  return readdirSync(join(CORPUS_DATA, dir))
    .filter((f) => f.endsWith('.txt'))
    .sort()
    .slice(0, n)
    .map((f) => stripMboxFrom(readFileSync(join(CORPUS_DATA, dir, f))));
}

describe('Rspamd adapter (real Rspamd)', { ...req, timeout: 180_000 }, () => {
  let d: RspamdDaemon;
  before(async () => {
    d = await startRspamd();
  });
  after(async () => {
    await d?.stop();
  });

  it('learns through the controller and reads Bayes from /checkv2', async () => {
    const c = new RspamdClient(d.normalUrl, 20_000, d.controllerUrl);
    const spam = corpus('spam-2', 230);
    const ham = corpus('easy-ham-1', 230);
    // Bayes answers only after min_learns (200) of each class.
    for (let i = 0; i < 220; i++) {
      await c.learn('spam', spam[i]!, true);
      await c.learn('ham', ham[i]!, true);
    }
    const only = { settings: { symbols_enabled: ['BAYES_SPAM', 'BAYES_HAM'] } };
    const sp = await Promise.all(spam.slice(220).map((m) => c.check(m, only)));
    const hp = await Promise.all(ham.slice(220).map((m) => c.check(m, only)));
    const answered = [...sp, ...hp].filter((r) => r.bayes !== null).length;
    const mean = (rs: typeof sp): number => rs.reduce((a, r) => a + (r.bayes ?? 0.5), 0) / rs.length;
    assert.ok(answered >= 15, `Bayes answered ${answered} of 20`);
    assert.ok(mean(sp) > mean(hp) + 0.2, `mean Bayes probability spam ${mean(sp)}, ham ${mean(hp)}`);
    const full = await c.check(spam[225]!, { ip: '126.1.2.3', user: 'u1', from: 'u1@example.jp' });
    assert.equal(typeof full.score, 'number');
    assert.ok(full.required > 0);
    assert.ok(Object.keys(full.symbols).length > 0);
  });

  it('combines Rspamd with our score in the content module; fails open when Rspamd is down', async () => {
    const f = fixture({ content: { rspamd: { url: d.normalUrl, timeoutMs: 20_000, weight: 0.5 } } });
    const raw = corpus('spam-2', 226)[225]!;
    const v = await f.engine.decide({ kind: 'message', t: T0, door: 'milter', sender: senderId('u1'), ip: '126.1.2.3', mailFrom: 'u1@example.jp', recipientCount: 1, size: raw.length, transaction: 'r1', raw });
    const reason = v.reasons.find((r) => r.module === 'content');
    assert.ok(reason !== undefined, JSON.stringify(v));
    assert.equal(typeof reason.figures?.rspamdScore, 'number');
    assert.equal(typeof reason.figures?.ours, 'number');
    await f.close();

    const g = fixture({ content: { rspamd: { url: 'http://127.0.0.1:1', timeoutMs: 500 } } });
    const a = new ContentAnalyser(g.config);
    const result = await a.analyse({ kind: 'message', t: T0, door: 'milter', sender: senderId('u2'), ip: null, mailFrom: 'u2@example.jp', recipientCount: 1, size: raw.length, transaction: 'r2', raw }, g.counters)!;
    assert.notEqual(result.rspamdError, null);
    assert.equal(result.probability, result.ours);
    await g.close();
  });

  it('score mapping and combination', () => {
    assert.equal(rspamdProbability(6, 6, 2), 0.5);
    assert.ok(rspamdProbability(15, 6, 2) > 0.98);
    assert.ok(Math.abs(combineProbabilities(0.9, 0.9, 0.5) - 0.9) < 1e-9);
    assert.ok(Math.abs(combineProbabilities(0.8, 0.1, 0) - 0.8) < 1e-9);
    assert.ok(combineProbabilities(0.8, 0.1, 0.5) < 0.5);
  });
});
