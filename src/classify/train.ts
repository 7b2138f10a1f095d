import { DEFAULT_FEATURES, type FeatureOptions } from './features.ts';
import { Model } from './model.ts';

// Training: logistic regression with AdaGrad over hashed binary features (each message
// L2-normalised), lazy L2 regularisation on the weights a message touches, a seeded
// shuffle per epoch. Deterministic: the same examples and options give the same weights.

export interface Example {
  readonly buckets: Uint32Array;
  /** 1 = spam, 0 = ham. */
  readonly label: 0 | 1;
}

export interface TrainOptions {
  readonly features: FeatureOptions;
  readonly epochs: number;
  readonly learningRate: number;
  readonly l2: number;
  /** Weight of a ham example relative to a spam one (>1 makes false positives costlier). */
  readonly hamWeight: number;
  readonly seed: number;
}

export const DEFAULT_TRAINING: TrainOptions = { features: DEFAULT_FEATURES, epochs: 12, learningRate: 0.5, l2: 1e-6, hamWeight: 1.5, seed: 1 };

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function train(examples: readonly Example[], opts: TrainOptions = DEFAULT_TRAINING, training: Record<string, unknown> = {}): Model {
  const size = 1 << opts.features.bits;
  const w = new Float64Array(size);
  const g2 = new Float64Array(size);
  let bias = 0;
  let biasG2 = 0;
  const order = examples.map((_, i) => i);
  const rand = mulberry32(opts.seed);
  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (const k of order) {
      const ex = examples[k]!;
      const n = ex.buckets.length;
      const x = n > 0 ? 1 / Math.sqrt(n) : 0;
      let z = bias;
      for (let i = 0; i < n; i++) z += w[ex.buckets[i]!]! * x;
      const p = 1 / (1 + Math.exp(-z));
      const cw = ex.label === 1 ? 1 : opts.hamWeight;
      const g = (p - ex.label) * cw;
      for (let i = 0; i < n; i++) {
        const b = ex.buckets[i]!;
        const grad = g * x + opts.l2 * w[b]!;
        g2[b]! += grad * grad;
        w[b]! -= (opts.learningRate * grad) / Math.sqrt(g2[b]! + 1e-8);
      }
      biasG2 += g * g;
      bias -= (opts.learningRate * g) / Math.sqrt(biasG2 + 1e-8);
    }
  }
  const weights = new Float32Array(size);
  for (let i = 0; i < size; i++) weights[i] = w[i]!;
  return new Model(
    {
      format: 1,
      features: opts.features,
      threshold: 0.5,
      bias: Math.fround(bias),
      training: { ...training, examples: examples.length, spam: examples.filter((e) => e.label === 1).length, epochs: opts.epochs, learningRate: opts.learningRate, l2: opts.l2, hamWeight: opts.hamWeight, seed: opts.seed },
    },
    weights,
  );
}
