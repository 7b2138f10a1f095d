import type { FumidaiConfig } from '../../config/config.ts';
import type { SenderSnapshot } from '../../store/counter-store.ts';
import type { SuspendRequest } from '../measure.ts';
import type { EpochMs } from '../types.ts';

// Shared by the detection rules that spare an ID's own familiar network (sustained-breach,
// baseline-jump): a network (IPv4 /24, IPv6 /48) the ID first used at least `familiarAfter`
// seconds ago — the office, the home line — is where the user's own mail-merge and
// newsletter come from; a network new to the ID (a rented server, a bot) is not.
//
// A home line's address changes when it reconnects, often to another /24 of the same ISP:
// with detection.familiarScope "as" the engine also spares a request from an autonomous
// system the ID has used for `familiarAfter` (SuspendRequest.familiarOperatorAfter).

export interface SourceFamiliarity {
  /** The request's network was first used by the ID at least `familiarAfter` ago. */
  readonly familiar: boolean;
  /** Days since the ID first used the request's network (one decimal); null when unknown. */
  readonly ageDays: number | null;
}

/** Whether the request's network is familiar to the ID; `familiarAfter` null: never. */
export function sourceFamiliarity(snapshot: SenderSnapshot, now: EpochMs, familiarAfter: number | null): SourceFamiliarity {
  const known = snapshot.prefixFirstSeen;
  if (known === null) return { familiar: false, ageDays: null };
  return {
    familiar: familiarAfter !== null && now - known >= familiarAfter * 1000,
    ageDays: Number(((now - known) / 86_400_000).toFixed(1)),
  };
}

/** SuspendRequest.familiarOperatorAfter for a rule with this familiarAfter; undefined when the check does not apply. */
export function familiarOperatorAfter(config: FumidaiConfig, familiarAfter: number | null): SuspendRequest['familiarOperatorAfter'] {
  return familiarAfter !== null && config.detection.familiarScope === 'as' ? familiarAfter : undefined;
}
