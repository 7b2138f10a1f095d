// Figures of a binary spam classifier: spam is the positive class.

export interface Confusion {
  /** Spam called spam. */
  readonly tp: number;
  /** Ham called spam: a false positive, the costly error. */
  readonly fp: number;
  readonly tn: number;
  /** Spam called ham. */
  readonly fn: number;
}

export interface Metrics extends Confusion {
  readonly precision: number;
  readonly recall: number;
  readonly f1: number;
  /** Ham false-positive rate: fp / (fp + tn). */
  readonly fpr: number;
  readonly accuracy: number;
}

export function confusion(pairs: Iterable<{ readonly label: 0 | 1; readonly predicted: boolean }>): Confusion {
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (const { label, predicted } of pairs) {
    if (label === 1) predicted ? tp++ : fn++;
    else predicted ? fp++ : tn++;
  }
  return { tp, fp, tn, fn };
}

export function metrics(c: Confusion): Metrics {
  const precision = c.tp + c.fp === 0 ? 0 : c.tp / (c.tp + c.fp);
  const recall = c.tp + c.fn === 0 ? 0 : c.tp / (c.tp + c.fn);
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  const fpr = c.fp + c.tn === 0 ? 0 : c.fp / (c.fp + c.tn);
  const total = c.tp + c.fp + c.tn + c.fn;
  return { ...c, precision, recall, f1, fpr, accuracy: total === 0 ? 0 : (c.tp + c.tn) / total };
}

/** Picks the threshold with the best F1 whose ham false-positive rate stays at or below maxFpr. */
export function tuneThreshold(scored: readonly { readonly label: 0 | 1; readonly p: number }[], maxFpr: number): { threshold: number; metrics: Metrics } {
  const candidates = [...new Set(scored.map((s) => s.p))].sort((a, b) => a - b);
  let best: { threshold: number; metrics: Metrics } | null = null;
  for (const t of [0.5, ...candidates]) {
    const m = metrics(confusion(scored.map((s) => ({ label: s.label, predicted: s.p >= t }))));
    if (m.fpr > maxFpr) continue;
    if (best === null || m.f1 > best.metrics.f1 || (m.f1 === best.metrics.f1 && Math.abs(t - 0.5) < Math.abs(best.threshold - 0.5))) best = { threshold: t, metrics: m };
  }
  return best ?? { threshold: 1, metrics: metrics(confusion(scored.map((s) => ({ label: s.label, predicted: false })))) };
}

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;

/** The confusion table and the figures, as text for a terminal. */
export function report(m: Metrics, title = 'evaluation'): string {
  const w = Math.max(5, String(m.tp + m.fp + m.tn + m.fn).length);
  const c = (n: number): string => String(n).padStart(w);
  return [
    `${title}: ${m.tp + m.fn} spam, ${m.tn + m.fp} ham`,
    '',
    `                 ${'called spam'.padStart(w + 6)}  ${'called ham'.padStart(w + 5)}`,
    `  spam           ${c(m.tp).padStart(w + 6)}  ${c(m.fn).padStart(w + 5)}`,
    `  ham            ${c(m.fp).padStart(w + 6)}  ${c(m.tn).padStart(w + 5)}`,
    '',
    `  precision ${pct(m.precision)}  recall ${pct(m.recall)}  F1 ${m.f1.toFixed(4)}  ham false-positive rate ${pct(m.fpr)} (${m.fp} of ${m.fp + m.tn})  accuracy ${pct(m.accuracy)}`,
  ].join('\n');
}
