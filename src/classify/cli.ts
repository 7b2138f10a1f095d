import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Classifier, DEFAULT_MODEL_FILE } from './classifier.ts';
import { readMessages, type LabelledMessage } from './corpus.ts';
import { confusion, metrics, report, tuneThreshold } from './evaluate.ts';
import { DEFAULT_FEATURES, FeatureSet, messageFeatures } from './features.ts';
import { parseMail, stripMboxFrom } from './mime.ts';
import { Model } from './model.ts';
import { DEFAULT_TRAINING, train, type Example } from './train.ts';

// `fumidai classifier train|eval|info|explain` — operators retrain on their own mail.

export const CLASSIFIER_HELP = `fumidai classifier — the content classifier (docs/classifier.md)

  classifier train --spam PATH [--spam PATH ...] --ham PATH [--ham PATH ...] --out FILE
        [--tune-fraction 0.2] [--max-fpr 0.0025] [--epochs 16] [--learning-rate 0.2]
        [--l2 0] [--ham-weight 1] [--bits 20]
      PATH is a message file (.eml), an mbox file, or a folder of either (recursive).
      A fraction of the messages, chosen by their SHA-256 (reproducible), is kept out
      of training to choose the spam threshold: the best F1 with a ham false-positive
      rate at or below --max-fpr. Give --dev-spam/--dev-ham to tune on separate data.
  classifier eval --spam PATH --ham PATH [--model FILE] [--threshold P] [--json]
      Precision, recall, F1, ham false-positive rate and the confusion table.
  classifier info [--model FILE]          what a model was trained on, its threshold
  classifier explain FILE [--model FILE]  a message's spam probability and top features
The default model is ${DEFAULT_MODEL_FILE}.
`;

function load(paths: readonly string[], label: 0 | 1): LabelledMessage[] {
  return paths.flatMap((p) => readMessages(p, label));
}

function examples(msgs: readonly LabelledMessage[], bits: number): Example[] {
  const set = new FeatureSet(bits);
  const opts = { ...DEFAULT_FEATURES, bits, wordPairs: false };
  return msgs.map((m) => {
    set.begin();
    messageFeatures(parseMail(m.raw), set, opts);
    return { buckets: set.indices(), label: m.label };
  });
}

const num = (v: string | undefined, name: string, def: number, min: number, max: number): number => {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new TypeError(`--${name} must be a number from ${min} to ${max}`);
  return n;
};

async function trainCommand(args: string[], out: (s: string) => void): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      spam: { type: 'string', multiple: true, default: [] },
      ham: { type: 'string', multiple: true, default: [] },
      'dev-spam': { type: 'string', multiple: true, default: [] },
      'dev-ham': { type: 'string', multiple: true, default: [] },
      out: { type: 'string' },
      'tune-fraction': { type: 'string' },
      'max-fpr': { type: 'string' },
      epochs: { type: 'string' },
      'learning-rate': { type: 'string' },
      l2: { type: 'string' },
      'ham-weight': { type: 'string' },
      bits: { type: 'string' },
      seed: { type: 'string' },
    },
  });
  if (values.spam.length === 0 || values.ham.length === 0 || values.out === undefined) {
    out(CLASSIFIER_HELP);
    return 2;
  }
  const bits = num(values.bits, 'bits', DEFAULT_FEATURES.bits, 12, 24);
  const opts = {
    features: { bits, wordPairs: false },
    epochs: num(values.epochs, 'epochs', 16, 1, 200),
    learningRate: num(values['learning-rate'], 'learning-rate', 0.2, 1e-4, 10),
    l2: num(values.l2, 'l2', 0, 0, 1),
    hamWeight: num(values['ham-weight'], 'ham-weight', 1, 0.1, 100),
    seed: num(values.seed, 'seed', DEFAULT_TRAINING.seed, 0, 2 ** 31),
  };
  const maxFpr = num(values['max-fpr'], 'max-fpr', 0.0025, 0, 1);
  const all = [...load(values.spam, 1), ...load(values.ham, 0)];
  let trainMsgs = all;
  let devMsgs = [...load(values['dev-spam'], 1), ...load(values['dev-ham'], 0)];
  if (devMsgs.length === 0) {
    const fraction = num(values['tune-fraction'], 'tune-fraction', 0.2, 0, 0.9);
    // By content hash, so the same folders always split the same way.
    const cut = Math.floor(fraction * 0x10000);
    const isDev = (m: LabelledMessage): boolean => createHash('sha256').update(m.raw).digest().readUInt16BE(0) < cut;
    devMsgs = all.filter(isDev);
    trainMsgs = all.filter((m) => !isDev(m));
  }
  const nSpam = trainMsgs.filter((m) => m.label === 1).length;
  out(`training on ${trainMsgs.length} messages (${nSpam} spam, ${trainMsgs.length - nSpam} ham); tuning on ${devMsgs.length}\n`);
  if (nSpam === 0 || nSpam === trainMsgs.length) throw new TypeError('training needs both spam and ham messages');
  let model = train(examples(trainMsgs, bits), opts, { source: 'fumidai classifier train', spamPaths: values.spam, hamPaths: values.ham });
  if (devMsgs.length > 0) {
    const dev = examples(devMsgs, bits);
    const tuned = tuneThreshold(dev.map((e) => ({ label: e.label, p: model.probability(e.buckets) })), maxFpr);
    const threshold = Math.floor(tuned.threshold * 10000) / 10000;
    model = model.withThreshold(threshold, { thresholdTunedOn: `${devMsgs.length} held-out messages, best F1 with ham FPR <= ${maxFpr}` });
    const m = metrics(confusion(dev.map((e) => ({ label: e.label, predicted: model.probability(e.buckets) >= threshold }))));
    out(`${report(m, `tuning data at threshold ${threshold}`)}\n`);
  }
  model.save(values.out);
  out(`wrote ${values.out}\n`);
  return 0;
}

async function evalCommand(args: string[], out: (s: string) => void): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      spam: { type: 'string', multiple: true, default: [] },
      ham: { type: 'string', multiple: true, default: [] },
      model: { type: 'string', default: DEFAULT_MODEL_FILE },
      threshold: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (values.spam.length === 0 && values.ham.length === 0) {
    out(CLASSIFIER_HELP);
    return 2;
  }
  const c = Classifier.load(values.model);
  const threshold = num(values.threshold, 'threshold', c.model.meta.threshold, 0, 1);
  const msgs = [...load(values.spam, 1), ...load(values.ham, 0)];
  const t0 = performance.now();
  const m = metrics(confusion(msgs.map((msg) => ({ label: msg.label, predicted: c.classify(msg.raw).probability >= threshold }))));
  const seconds = (performance.now() - t0) / 1000;
  if (values.json) out(`${JSON.stringify({ model: values.model, threshold, ...m, messagesPerSecond: Math.round(msgs.length / seconds) })}\n`);
  else out(`${report(m, `${values.model} at threshold ${threshold}`)}\n  ${Math.round(msgs.length / seconds)} messages/s\n`);
  return 0;
}

export async function classifierCommand(args: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'train':
      return trainCommand(rest, out);
    case 'eval':
      return evalCommand(rest, out);
    case 'info': {
      const { values } = parseArgs({ args: rest, options: { model: { type: 'string', default: DEFAULT_MODEL_FILE } } });
      const m = Model.load(values.model);
      out(`${JSON.stringify({ file: values.model, ...m.meta }, null, 2)}\n`);
      return 0;
    }
    case 'explain': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { model: { type: 'string', default: DEFAULT_MODEL_FILE } } });
      if (positionals.length !== 1) break;
      const c = Classifier.load(values.model);
      const raw = stripMboxFrom(readFileSync(positionals[0]!));
      const r = c.classify(raw);
      out(`spam probability ${r.probability.toFixed(4)} (threshold ${c.model.meta.threshold}): ${r.spam ? 'spam' : 'not spam'}\n`);
      for (const f of c.explain(raw, 15)) out(`  ${f.weight >= 0 ? '+' : ''}${f.weight.toFixed(3)}  ${f.feature}\n`);
      return 0;
    }
  }
  out(CLASSIFIER_HELP);
  return 2;
}
