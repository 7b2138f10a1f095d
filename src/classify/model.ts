import { readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { FeatureOptions } from './features.ts';

// A trained model: logistic regression over hashed binary features, L2-normalised per
// message. The file is gzip of one text line "FUMIDAI-MODEL 1 <json meta>\n" followed
// by the non-zero weights as (uint32 bucket, float32 weight) pairs, little-endian,
// ascending by bucket. The same training input gives the same file, byte for byte.

export interface ModelMeta {
  readonly format: 1;
  readonly features: FeatureOptions;
  /** Spam probability at or above which a message counts as spam (tuned on held-out data). */
  readonly threshold: number;
  readonly bias: number;
  /** What it was trained on, for `classifier info` and the docs. */
  readonly training: Readonly<Record<string, unknown>>;
}

const MAGIC = 'FUMIDAI-MODEL 1 ';

export class Model {
  constructor(
    readonly meta: ModelMeta,
    /** Dense weights, 2^bits of them. */
    readonly weights: Float32Array,
  ) {
    if (weights.length !== 1 << meta.features.bits) throw new Error(`model: expected ${1 << meta.features.bits} weights, got ${weights.length}`);
  }

  /** Logit of spam for a set of buckets. */
  logit(buckets: ArrayLike<number>): number {
    const n = buckets.length;
    if (n === 0) return this.meta.bias;
    let s = 0;
    for (let i = 0; i < n; i++) s += this.weights[buckets[i]!]!;
    return this.meta.bias + s / Math.sqrt(n);
  }

  probability(buckets: ArrayLike<number>): number {
    return 1 / (1 + Math.exp(-this.logit(buckets)));
  }

  withThreshold(threshold: number, extra: Record<string, unknown> = {}): Model {
    return new Model({ ...this.meta, threshold, training: { ...this.meta.training, ...extra } }, this.weights);
  }

  serialize(): Buffer {
    let nonZero = 0;
    for (let i = 0; i < this.weights.length; i++) if (this.weights[i] !== 0) nonZero++;
    const body = Buffer.alloc(nonZero * 8);
    let o = 0;
    for (let i = 0; i < this.weights.length; i++) {
      const w = this.weights[i]!;
      if (w === 0) continue;
      body.writeUInt32LE(i, o);
      body.writeFloatLE(w, o + 4);
      o += 8;
    }
    const head = Buffer.from(`${MAGIC}${JSON.stringify(this.meta)}\n`, 'utf8');
    return gzipSync(Buffer.concat([head, body]), { level: 9 });
  }

  static deserialize(data: Buffer, source = 'model'): Model {
    let raw: Buffer;
    try {
      raw = gunzipSync(data);
    } catch (e) {
      throw new Error(`${source}: not a fumidai model (${(e as Error).message})`);
    }
    const nl = raw.indexOf(10);
    const line = raw.toString('utf8', 0, nl < 0 ? 0 : nl);
    if (!line.startsWith(MAGIC)) throw new Error(`${source}: not a fumidai model (bad header)`);
    const meta = JSON.parse(line.slice(MAGIC.length)) as ModelMeta;
    if (meta.format !== 1 || !Number.isInteger(meta.features?.bits) || meta.features.bits < 8 || meta.features.bits > 24) throw new Error(`${source}: unsupported model format`);
    const weights = new Float32Array(1 << meta.features.bits);
    const body = raw.subarray(nl + 1);
    if (body.length % 8 !== 0) throw new Error(`${source}: truncated model`);
    for (let o = 0; o < body.length; o += 8) {
      const i = body.readUInt32LE(o);
      if (i >= weights.length) throw new Error(`${source}: weight index out of range`);
      weights[i] = body.readFloatLE(o + 4);
    }
    return new Model(meta, weights);
  }

  save(file: string): void {
    writeFileSync(file, this.serialize());
  }

  static load(file: string): Model {
    return Model.deserialize(readFileSync(file), file);
  }
}
