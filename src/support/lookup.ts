import type { FumidaiConfig } from '../config/config.ts';
import { limitsFor } from '../engine/measures/rate-limit.ts';
import type { EpochMs, SenderId } from '../engine/types.ts';
import type { CounterStore, SourceIpStat } from '../store/counter-store.ts';
import type { DecisionRecord, RecordStore, Suspension } from '../store/record-store.ts';

// What support needs to answer "was my account abused?" (countermeasure 1, step 4):
// counts per window against each limit, source addresses, recent decisions, and the
// suspension state with its history.

export interface LookupReport {
  readonly sender: SenderId;
  readonly at: EpochMs;
  readonly windows: readonly {
    readonly name: string;
    readonly seconds: number;
    readonly messages: number;
    readonly messagesLimit: number;
    readonly recipients: number;
    readonly recipientsLimit: number;
  }[];
  readonly limitsSource: 'default' | 'user' | 'bulk-window';
  readonly distinctIps: readonly { readonly seconds: number; readonly count: number }[];
  readonly sourceIps: readonly SourceIpStat[];
  readonly suspension: Suspension | null;
  readonly history: readonly Suspension[];
  readonly recentDecisions: readonly DecisionRecord[];
}

export async function lookup(
  sender: SenderId,
  deps: { config: FumidaiConfig; counters: CounterStore; records: RecordStore; now: EpochMs },
): Promise<LookupReport> {
  const { config, counters, records, now } = deps;
  const settings = await records.user(sender);
  const limits = limitsFor(config, settings, now);
  const limitsSource = limits === config.limits.windows ? 'default' : settings?.limits === limits ? 'user' : 'bulk-window';
  const peek = await counters.peek(sender, now);
  const history = await records.suspensionHistory(sender);
  return {
    sender,
    at: now,
    windows: config.limits.windows.map((w, i) => ({
      name: w.name,
      seconds: w.seconds,
      messages: peek.windows[i]?.messages ?? 0,
      messagesLimit: limits[i]?.messages ?? w.messages,
      recipients: peek.windows[i]?.recipients ?? 0,
      recipientsLimit: limits[i]?.recipients ?? w.recipients,
    })),
    limitsSource,
    distinctIps: counters.layout.distinctWindows.map((seconds, i) => ({ seconds, count: peek.distinctIps[i] ?? 0 })),
    sourceIps: await counters.sourceIps(sender, now),
    suspension: history.find((s) => s.releasedAt === null) ?? null,
    history,
    recentDecisions: await records.recentDecisions(sender, 20),
  };
}
