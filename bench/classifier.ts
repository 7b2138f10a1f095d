// The content classifier benchmark (countermeasure 2): our classifier next to Rspamd's
// Bayes classifier, both trained on the `train` part of the SpamAssassin split
// (shared/data/spamassassin-split), measured on `holdout` in the same run, with and
// without the 39 holdout messages whose body also occurs in train. Then our
// classification throughput (MIME parsing included) on typical 5-20 KB messages, one core.
//
//   node --import tsx bench/classifier.ts [--no-rspamd] [--seconds 3] [--json FILE]
//
// Ours: the shipped models/default.fmodel (scripts/build-default-model.ts: trained on
// train, threshold tuned on dev). Rspamd: Debian's rspamd 3.4 started privately
// (src/classify/rspamd-daemon.ts), its Bayes trained through /learnspam and /learnham on
// the same train messages; holdout scanned with only the Bayes symbols enabled. Rspamd
// is reported as shipped (spam = BAYES_SPAM fired) and with its probability threshold
// tuned on dev by the same rule as ours (best F1 with ham FPR <= 0.25%).
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { defaultManifest, CORPUS_DATA } from '../scripts/build-default-model.ts';
import { Classifier } from '../src/classify/classifier.ts';
import { nearDuplicateIds, readManifest, readSpamAssassin, type CorpusMessage } from '../src/classify/corpus.ts';
import { confusion, metrics, tuneThreshold, type Metrics } from '../src/classify/evaluate.ts';
import { RspamdClient } from '../src/classify/rspamd.ts';
import { RSPAMD_BIN, startRspamd } from '../src/classify/rspamd-daemon.ts';
import { existsSync } from 'node:fs';

interface Row {
  readonly name: string;
  readonly all: Metrics;
  readonly withoutNearDuplicates: Metrics;
}

const BAYES_ONLY = { symbols_enabled: ['BAYES_SPAM', 'BAYES_HAM'] };

function score(holdout: readonly CorpusMessage[], near: Set<string>, predicted: (m: CorpusMessage) => boolean, name: string): Row {
  const pairs = holdout.map((m) => ({ id: m.id, label: m.label, predicted: predicted(m) }));
  return { name, all: metrics(confusion(pairs)), withoutNearDuplicates: metrics(confusion(pairs.filter((p) => !near.has(p.id)))) };
}

async function pool<T>(items: readonly T[], concurrency: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

function line(r: Row, which: 'all' | 'withoutNearDuplicates'): string {
  const m = r[which];
  return `| ${r.name} | ${m.tp + m.fn} / ${m.tn + m.fp} | ${(m.precision * 100).toFixed(2)}% | ${(m.recall * 100).toFixed(2)}% | **${m.f1.toFixed(4)}** | **${(m.fpr * 100).toFixed(2)}%** (${m.fp}) | ${m.fn} |`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'no-rspamd': { type: 'boolean', default: false }, seconds: { type: 'string', default: '3' }, json: { type: 'string' } } });
  const t0 = Date.now();
  const corpus = readSpamAssassin(CORPUS_DATA, readManifest(defaultManifest()));
  const near = nearDuplicateIds(corpus);
  const train = corpus.filter((m) => m.split === 'train');
  const dev = corpus.filter((m) => m.split === 'dev');
  const holdout = corpus.filter((m) => m.split === 'holdout');
  process.stderr.write(`corpus verified against the manifest: train ${train.length}, dev ${dev.length}, holdout ${holdout.length} (${near.size} near-duplicates of train)\n`);

  const ours = Classifier.load();
  const oursP = new Map(holdout.map((m) => [m.id, ours.classify(m.raw).probability]));
  const rows: Row[] = [score(holdout, near, (m) => oursP.get(m.id)! >= ours.model.meta.threshold, `fumidai (threshold ${ours.model.meta.threshold}, tuned on dev)`)];

  let rspamdInfo: Record<string, unknown> = { skipped: true };
  if (!values['no-rspamd'] && existsSync(RSPAMD_BIN)) {
    const d = await startRspamd();
    try {
      const client = new RspamdClient(d.normalUrl, 30_000, d.controllerUrl);
      const tl = Date.now();
      let learned = 0;
      await pool(train, 4, async (m) => {
        if (await client.learn(m.label === 1 ? 'spam' : 'ham', m.raw, true)) learned++;
      });
      const learnSeconds = (Date.now() - tl) / 1000;
      process.stderr.write(`rspamd: learned ${learned} of ${train.length} train messages in ${learnSeconds.toFixed(1)} s\n`);
      const bayes = new Map<string, { p: number | null; spam: boolean }>();
      const ts = Date.now();
      await pool([...dev, ...holdout], 4, async (m) => {
        const r = await client.check(m.raw, { settings: BAYES_ONLY });
        bayes.set(m.id, { p: r.bayes, spam: r.symbols['BAYES_SPAM'] !== undefined });
      });
      const scanSeconds = (Date.now() - ts) / 1000;
      client.close();
      rows.push(score(holdout, near, (m) => bayes.get(m.id)!.spam, 'Rspamd 3.4 Bayes, as shipped (BAYES_SPAM)'));
      // No Bayes answer (too few tokens) counts as ham, probability 0.5.
      const p = (m: CorpusMessage): number => bayes.get(m.id)!.p ?? 0.5;
      const tuned = tuneThreshold(dev.map((m) => ({ label: m.label, p: p(m) })), 0.0025);
      rows.push(score(holdout, near, (m) => p(m) >= tuned.threshold, `Rspamd 3.4 Bayes, threshold ${tuned.threshold.toFixed(4)} tuned on dev`));
      const silent = holdout.filter((m) => bayes.get(m.id)!.p === null).length;
      rspamdInfo = { learned, learnSeconds, scanned: dev.length + holdout.length, scanSeconds, holdoutWithoutBayesAnswer: silent, tunedThreshold: tuned.threshold };
    } finally {
      await d.stop();
    }
  }

  // Throughput: typical 5-20 KB messages, parse + features + score, one core (this process).
  const typical = corpus.filter((m) => m.raw.length >= 5_000 && m.raw.length <= 20_000);
  const bytes = typical.reduce((a, m) => a + m.raw.length, 0);
  for (const m of typical.slice(0, 300)) ours.classify(m.raw); // warm-up
  const seconds = Number(values.seconds);
  let n = 0;
  let b = 0;
  const start = process.cpuUsage();
  const wall = performance.now();
  while (performance.now() - wall < seconds * 1000) {
    for (const m of typical) {
      ours.classify(m.raw);
      n++;
      b += m.raw.length;
    }
  }
  const cpu = process.cpuUsage(start);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const throughput = { messages: n, meanBytes: Math.round(bytes / typical.length), cpuSeconds, messagesPerCpuSecond: Math.round(n / cpuSeconds), megabytesPerCpuSecond: Number((b / 1e6 / cpuSeconds).toFixed(1)) };

  const out: string[] = [];
  for (const which of ['all', 'withoutNearDuplicates'] as const) {
    out.push('', which === 'all' ? `Holdout, all ${holdout.length} messages:` : `Holdout without the ${near.size} near-duplicates of train (${holdout.length - near.size} messages):`, '');
    out.push('| classifier | spam / ham | precision | recall | F1 | ham FP rate (FP) | FN |', '|---|---|---:|---:|---:|---:|---:|');
    for (const r of rows) out.push(line(r, which));
  }
  out.push('', `Throughput (fumidai, MIME parsing included, one core): ${throughput.messagesPerCpuSecond} messages per CPU second on ${typical.length} messages of 5-20 KB (mean ${throughput.meanBytes} bytes), ${throughput.megabytesPerCpuSecond} MB/s`);
  if (!('skipped' in rspamdInfo)) out.push(`Rspamd: learned ${String(rspamdInfo.learned)} in ${Number(rspamdInfo.learnSeconds).toFixed(1)} s; scanned ${String(rspamdInfo.scanned)} in ${Number(rspamdInfo.scanSeconds).toFixed(1)} s (Bayes only, 4 concurrent); ${String(rspamdInfo.holdoutWithoutBayesAnswer)} holdout messages without a Bayes answer`);
  else out.push('Rspamd: skipped (not installed or --no-rspamd)');
  out.push(`(${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  process.stdout.write(`${out.join('\n')}\n`);
  if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify({ rows, rspamd: rspamdInfo, throughput, nearDuplicates: [...near].sort() }, null, 2)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/classifier: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
