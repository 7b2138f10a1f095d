import type { SourcePenalty } from '../../config/config.ts';
import type { Finding, Measure } from '../measure.ts';
import { sourceListed } from '../replies.ts';
import type { SourceListing } from '../types.ts';
import { penaltyFinding, severer } from './source-common.ts';

// Countermeasure 3, IP reputation: the operator's deny lists (CIDR, ASN), the Tor exit
// list and DNS blocklists, each with its own action. The resolver did the lookups
// (src/geo); this module only turns listings into a verdict. Allow-listed relays never
// get here (they are treated as internal).
export const sourceReputation: Measure = {
  name: 'source-reputation',
  assess(ctx): Finding | null {
    const src = ctx.source;
    if (!ctx.config.source.enabled || !src || src.listings.length === 0) return null;
    const rep = ctx.config.source.reputation;
    const actionOf = (l: SourceListing): SourcePenalty =>
      l.kind === 'tor' ? rep.torAction : l.kind === 'dnsbl' ? (rep.dnsbl.zones.find((z) => z.zone === l.list)?.action ?? 'reject') : rep.deny.action;
    let action: SourcePenalty = 'notify';
    for (const l of src.listings) action = severer(action, actionOf(l));
    const first = src.listings[0]!;
    return penaltyFinding(
      ctx,
      { action, limitScale: 0.2 },
      {
        module: 'source',
        rule: `listed-${first.kind}`,
        detail: src.listings.map((l) => l.detail).join('; '),
        figures: { ip: src.ip, lists: src.listings.map((l) => l.list).join(',') },
      },
      sourceListed(src.ip),
    );
  },
};
