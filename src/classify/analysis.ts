import type { FumidaiConfig } from '../config/config.ts';
import type { AssessContext } from '../engine/measure.ts';
import type { MessageEvent, SenderId } from '../engine/types.ts';
import type { CampaignSnapshot, CounterStore } from '../store/counter-store.ts';
import { Classifier, DEFAULT_MODEL_FILE } from './classifier.ts';
import { fingerprints, type Fingerprints } from './fingerprint.ts';
import { combineProbabilities, RspamdClient, rspamdProbability, type RspamdResult } from './rspamd.ts';

// What the engine knows about a message's content (countermeasure 2), computed once per
// message before the modules run and shared by the `content` and `pool` modules:
// our classifier's probability, Rspamd's (when configured), the combined one, bulk-tool
// traits, and how many sender IDs sent the same campaign within the window.

export interface ContentAnalysis {
  /** Combined spam probability (ours alone without Rspamd). */
  readonly probability: number;
  /** Our classifier's probability. */
  readonly ours: number;
  /** The classifier's tuned threshold (content.suspect overrides it). */
  readonly modelThreshold: number;
  readonly rspamd: RspamdResult | null;
  /** Set when Rspamd was configured but failed; its score is then not part of `probability`. */
  readonly rspamdError: string | null;
  readonly fingerprints: Fingerprints;
  /** Distinct sender IDs per fingerprint in the window (body, urls), when counted. */
  readonly campaignSenders: { readonly body: number; readonly urls: number } | null;
}

/** The context the content and pool modules see: the engine adds the analysis. */
export type ContentContext = AssessContext & { readonly content?: ContentAnalysis | null };

/** Builds the message text the classifier reads: the raw message, else the header fields alone. */
function messageBytes(event: MessageEvent): Buffer | null {
  if (event.raw !== undefined && event.raw.length > 0) return event.raw;
  if (event.headers !== undefined && event.headers.length > 0) {
    return Buffer.from(`${event.headers.map(([n, v]) => `${n}: ${v}`).join('\r\n')}\r\n\r\n`, 'utf8');
  }
  return null;
}

export class ContentAnalyser {
  private readonly classifier: Classifier;
  private readonly rspamd: RspamdClient | null;

  constructor(
    private readonly config: FumidaiConfig,
    classifier?: Classifier,
  ) {
    this.classifier = classifier ?? Classifier.load(config.content.model ?? DEFAULT_MODEL_FILE);
    const r = config.content.rspamd;
    this.rspamd = r.url !== null ? new RspamdClient(r.url, r.timeoutMs) : null;
  }

  get threshold(): number {
    return this.config.content.suspect ?? this.classifier.model.meta.threshold;
  }

  /**
   * Classifies the message synchronously, then (asynchronously) counts its campaign
   * fingerprints in the store and asks Rspamd, both started at once. Null when the
   * event carries no content (policy door).
   */
  analyse(event: MessageEvent & { readonly sender: SenderId }, counters: CounterStore): Promise<ContentAnalysis> | null {
    const raw = messageBytes(event);
    if (raw === null) return null;
    const c = this.classifier.classify(raw);
    const prints = fingerprints(c.text);
    const cfg = this.config.content;
    const keys = [prints.body, prints.urls].filter((k): k is string => k !== null);
    const campaign: Promise<CampaignSnapshot> | null =
      cfg.campaign.enabled && keys.length > 0 && counters.observeCampaign !== undefined
        ? counters.observeCampaign({ sender: event.sender, now: event.t, windowSeconds: cfg.campaign.windowSeconds, fingerprints: keys })
        : null;
    const rspamd = this.rspamd?.check(raw, { ip: event.ip, user: event.sender, from: event.mailFrom, queueId: event.transaction }) ?? null;
    return this.finish(c.probability, prints, campaign, rspamd);
  }

  private async finish(ours: number, prints: Fingerprints, campaign: Promise<CampaignSnapshot> | null, rspamd: Promise<RspamdResult> | null): Promise<ContentAnalysis> {
    const cfg = this.config.content;
    let rspamdResult: RspamdResult | null = null;
    let rspamdError: string | null = null;
    const [snap] = await Promise.all([
      campaign,
      rspamd?.then(
        (r) => {
          rspamdResult = r;
        },
        (e: unknown) => {
          rspamdError = (e as Error).message;
        },
      ),
    ]);
    if (rspamdError !== null && !cfg.rspamd.failOpen) throw new Error(rspamdError);
    let campaignSenders: ContentAnalysis['campaignSenders'] = null;
    if (snap !== null) {
      let i = 0;
      const body = prints.body !== null ? snap.senders[i++] ?? 0 : 0;
      const urls = prints.urls !== null ? snap.senders[i] ?? 0 : 0;
      campaignSenders = { body, urls };
    }
    const r = rspamdResult as RspamdResult | null;
    const probability = r !== null ? combineProbabilities(ours, rspamdProbability(r.score, cfg.rspamd.center, cfg.rspamd.scale), cfg.rspamd.weight) : ours;
    return { probability, ours, modelThreshold: this.classifier.model.meta.threshold, rspamd: r, rspamdError, fingerprints: prints, campaignSenders };
  }

  close(): void {
    this.rspamd?.close();
  }
}
