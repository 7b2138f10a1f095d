import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FeatureSet, messageFeatures, type MessageText } from './features.ts';
import { parseMail, type ParsedMail } from './mime.ts';
import { Model } from './model.ts';

/** The model shipped with fumidai, built by scripts/build-default-model.ts (docs/classifier.md). */
export const DEFAULT_MODEL_FILE = fileURLToPath(new URL('../../models/default.fmodel', import.meta.url));

export interface Classification {
  /** Spam probability, 0..1. */
  readonly probability: number;
  /** probability >= the model's threshold. */
  readonly spam: boolean;
  readonly mail: ParsedMail;
  readonly text: MessageText;
  /** Number of distinct features the message had. */
  readonly features: number;
}

// Parses, extracts features and scores, reusing one feature table: a Classifier is
// cheap to call and not re-entrant (one per thread, which in Node is one per process).
export class Classifier {
  private readonly set: FeatureSet;

  constructor(readonly model: Model) {
    this.set = new FeatureSet(model.meta.features.bits);
  }

  static load(file: string = DEFAULT_MODEL_FILE): Classifier {
    if (!existsSync(file)) throw new Error(`${file}: model file not found${file === DEFAULT_MODEL_FILE ? ' (build it: node --import tsx scripts/build-default-model.ts)' : ''}`);
    return new Classifier(Model.load(file));
  }

  /** The feature buckets of a message (a copy) and its text. */
  features(raw: Buffer | string): { buckets: Uint32Array; text: MessageText; mail: ParsedMail } {
    const mail = parseMail(raw);
    this.set.begin();
    const text = messageFeatures(mail, this.set, this.model.meta.features);
    return { buckets: this.set.indices(), text, mail };
  }

  classify(raw: Buffer | string): Classification {
    const mail = parseMail(raw);
    this.set.begin();
    const text = messageFeatures(mail, this.set, this.model.meta.features);
    const probability = this.model.probability(this.set.view());
    return { probability, spam: probability >= this.model.meta.threshold, mail, text, features: this.set.count };
  }

  /** The features that pushed the score most, with their weights (support and docs). */
  explain(raw: Buffer | string, top = 10): { feature: string; weight: number }[] {
    const mail = parseMail(raw);
    this.set.names = new Map();
    try {
      this.set.begin();
      messageFeatures(mail, this.set, this.model.meta.features);
      const out = [...this.set.view()].map((b) => ({ feature: this.set.names!.get(b) ?? `#${b}`, weight: this.model.weights[b]! }));
      out.sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight));
      return out.slice(0, top);
    } finally {
      this.set.names = null;
    }
  }
}
