import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Classifier, DEFAULT_MODEL_FILE } from '../../src/classify/classifier.ts';
import { classifierCommand } from '../../src/classify/cli.ts';
import { readMessages, splitMbox, splitOf } from '../../src/classify/corpus.ts';
import { confusion, metrics, tuneThreshold } from '../../src/classify/evaluate.ts';
import { FeatureSet, messageFeatures } from '../../src/classify/features.ts';
import { parseMail } from '../../src/classify/mime.ts';
import { Model } from '../../src/classify/model.ts';
import { train } from '../../src/classify/train.ts';

const SPAM_WORDS = ['free', 'winner', 'prize', 'claim', 'cash', 'offer', 'viagra', 'click', 'bonus', 'casino', '当選', 'キャンペーン', '無料'];
const HAM_WORDS = ['meeting', 'tomorrow', 'agenda', 'report', 'lunch', 'project', 'review', 'thanks', 'schedule', 'draft', '会議', '資料', '明日'];

function message(i: number, spam: boolean): Buffer {
  const words = spam ? SPAM_WORDS : HAM_WORDS;
  const pick = (k: number): string => words[(i * 7 + k * 3) % words.length]!;
  const body = Array.from({ length: 30 }, (_, k) => pick(k)).join(' ');
  const headers = spam
    ? `From: "WINNER" <promo${i}@example.biz>\r\nSubject: ${pick(1)} ${pick(2)}!!!\r\nX-Mailer: MassMailer 3.1\r\n`
    : `From: Taro <taro@example.jp>\r\nSubject: ${pick(1)} ${pick(2)}\r\nMessage-ID: <${i}@example.jp>\r\nDate: Mon, 2 Nov 2026 09:00:00 +0900\r\nMIME-Version: 1.0\r\n`;
  return Buffer.from(`${headers}Content-Type: text/plain; charset=utf-8\r\n\r\n${body} ${spam ? `http://win${i % 3}.example.biz/claim` : ''}\r\n`, 'utf8');
}

const dir = mkdtempSync(join(tmpdir(), 'fumidai-classify-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function examples(n: number, offset = 0) {
  const set = new FeatureSet(16);
  return Array.from({ length: n * 2 }, (_, k) => {
    const spam = k % 2 === 0;
    set.begin();
    messageFeatures(parseMail(message(offset + k, spam)), set, { bits: 16, wordPairs: false });
    return { buckets: set.indices(), label: (spam ? 1 : 0) as 0 | 1 };
  });
}

describe('model: training, evaluation, files', () => {
  const opts = { features: { bits: 16, wordPairs: false }, epochs: 8, learningRate: 0.3, l2: 0, hamWeight: 1, seed: 1 };

  it('trains on a small set and separates held-out messages', () => {
    const model = train(examples(40), opts);
    const test = examples(20, 1000);
    const m = metrics(confusion(test.map((e) => ({ label: e.label, predicted: model.probability(e.buckets) >= 0.5 }))));
    assert.equal(m.f1, 1);
    assert.equal(m.fpr, 0);
  });

  it('is deterministic and survives save/load byte for byte', () => {
    const a = train(examples(30), opts).withThreshold(0.6);
    const b = train(examples(30), opts).withThreshold(0.6);
    assert.ok(a.serialize().equals(b.serialize()));
    const file = join(dir, 'm.fmodel');
    a.save(file);
    const c = Model.load(file);
    assert.equal(c.meta.threshold, 0.6);
    assert.deepEqual(c.weights, a.weights);
    assert.ok(c.serialize().equals(a.serialize()));
    assert.throws(() => Model.deserialize(Buffer.from('not a model')), /not a fumidai model/);
  });

  it('metrics and threshold tuning: F1 under a ham false-positive cap', () => {
    const m = metrics({ tp: 8, fp: 1, tn: 9, fn: 2 });
    assert.equal(m.precision, 8 / 9);
    assert.equal(m.recall, 0.8);
    assert.equal(m.fpr, 0.1);
    const scored = [{ label: 1, p: 0.9 }, { label: 1, p: 0.7 }, { label: 0, p: 0.8 }, { label: 0, p: 0.1 }] as const;
    const t = tuneThreshold(scored, 0);
    assert.equal(t.metrics.fp, 0);
    assert.equal(t.threshold, 0.9);
  });

  it('split rule of the manifest: first hex digit 0-9 train, a-c dev, d-f holdout', () => {
    assert.deepEqual(['0a', '9f', 'a0', 'c1', 'd2', 'ff'].map(splitOf), ['train', 'train', 'dev', 'dev', 'holdout', 'holdout']);
  });

  it('mbox files are split at From lines and >From is unquoted', () => {
    const parts = splitMbox(Buffer.from('From a@b Mon\nSubject: 1\n\nhello\n>From the start\nFrom c@d Tue\nSubject: 2\n\nbye\n'));
    assert.equal(parts.length, 2);
    assert.equal(parts[0]!.toString(), 'Subject: 1\n\nhello\nFrom the start\n');
    assert.equal(parts[1]!.toString(), 'Subject: 2\n\nbye\n');
  });

  it('fumidai classifier train / eval round trip on folders of .eml and an mbox', async () => {
    mkdirSync(join(dir, 'spam'));
    mkdirSync(join(dir, 'ham'));
    for (let i = 0; i < 60; i++) writeFileSync(join(dir, 'spam', `${i}.eml`), message(i, true));
    writeFileSync(join(dir, 'ham.mbox'), Buffer.concat(Array.from({ length: 60 }, (_, i) => Buffer.concat([Buffer.from(`From taro@example.jp Mon Nov  2 09:00:00 2026\n`), message(i, false), Buffer.from('\n')]))));
    assert.equal(readMessages(join(dir, 'ham.mbox'), 0).length, 60);
    let out = '';
    const model = join(dir, 'own.fmodel');
    const rc = await classifierCommand(['train', '--spam', join(dir, 'spam'), '--ham', join(dir, 'ham.mbox'), '--out', model, '--bits', '16', '--epochs', '8'], (s) => (out += s));
    assert.equal(rc, 0, out);
    assert.match(out, /training on \d+ messages/);
    out = '';
    assert.equal(await classifierCommand(['eval', '--model', model, '--spam', join(dir, 'spam'), '--ham', join(dir, 'ham.mbox'), '--json'], (s) => (out += s)), 0);
    const r = JSON.parse(out) as { f1: number; fpr: number; tp: number; tn: number };
    assert.equal(r.tp + r.tn, 120);
    assert.ok(r.f1 > 0.95 && r.fpr === 0, out);
    out = '';
    assert.equal(await classifierCommand(['explain', join(dir, 'spam', '1.eml'), '--model', model], (s) => (out += s)), 0);
    assert.match(out, /spam probability/);
  });

  it('the shipped model loads and separates obvious cases (English and Japanese)', () => {
    const c = Classifier.load(DEFAULT_MODEL_FILE);
    assert.equal(c.model.meta.features.bits, 20);
    const spam = c.classify(Buffer.from('From: "Best Deals" <deals@example.biz>\r\nSubject: FREE!!! Make $$$ fast, limited offer\r\n\r\nDear friend, you have been selected! Earn $5000 a week from home. Click here http://example.biz/optin to claim. To be removed from our mailing list reply REMOVE.\r\n'));
    const ham = c.classify(Buffer.from('From: Taro <taro@example.jp>\r\nSubject: Re: patch for the build script\r\nMessage-ID: <1@example.jp>\r\nDate: Mon, 2 Nov 2026 09:00:00 +0900\r\n\r\nThanks, I applied the patch and the tests pass on my machine. I will look at the remaining warning tomorrow.\r\n'));
    assert.ok(spam.probability > ham.probability);
    assert.equal(spam.spam, true);
    assert.equal(ham.spam, false);
  });
});
