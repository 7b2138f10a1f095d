import type { CampaignRequest, CampaignSnapshot } from '../counter-store.ts';

// Distinct sender IDs per campaign fingerprint over a sliding window, in memory.
// Maps keep insertion order; touching an entry re-inserts it at the end, so the oldest
// entries are always first and expiry pops from the front: O(1) amortised per message,
// however large a campaign grows. Fingerprints not seen for a window are dropped; at
// most `maxFingerprints` are kept (the least recently seen go first).

export class CampaignTracker {
  /** fingerprint -> (sender -> last seen, seconds), both in recency order. */
  private readonly byPrint = new Map<string, Map<string, number>>();
  private readonly lastSeen = new Map<string, number>();

  constructor(private readonly maxFingerprints = 1_000_000) {}

  observe(req: CampaignRequest): CampaignSnapshot {
    const now = Math.floor(req.now / 1000);
    const cutoff = now - req.windowSeconds;
    this.expire(cutoff);
    const senders = req.fingerprints.map((fp) => {
      let set = this.byPrint.get(fp);
      if (set === undefined) {
        set = new Map();
        this.byPrint.set(fp, set);
      }
      set.delete(req.sender);
      set.set(req.sender, now);
      for (const [s, t] of set) {
        if (t > cutoff) break;
        set.delete(s);
      }
      this.lastSeen.delete(fp);
      this.lastSeen.set(fp, now);
      return set.size;
    });
    while (this.lastSeen.size > this.maxFingerprints) this.drop(this.lastSeen.keys().next().value!);
    return { senders };
  }

  private expire(cutoff: number): void {
    for (const [fp, t] of this.lastSeen) {
      if (t > cutoff) break;
      this.drop(fp);
    }
  }

  private drop(fp: string): void {
    this.lastSeen.delete(fp);
    this.byPrint.delete(fp);
  }

  /** Number of fingerprints tracked. */
  get size(): number {
    return this.lastSeen.size;
  }
}
