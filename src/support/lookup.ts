import type { FumidaiConfig } from '../config/config.ts';
import { limitsFor } from '../engine/measures/rate-limit.ts';
import type { EpochMs, NetworkOperatorLookup, SenderId } from '../engine/types.ts';
import type { CounterStore, SourceIpStat } from '../store/counter-store.ts';
import type { DecisionRecord, RecordStore, SenderAddress, Suspension } from '../store/record-store.ts';
import { abroadPermission } from '../engine/measures/source-common.ts';

// What support needs to answer "was my account abused?" (countermeasure 1, step 4):
// counts per window against each limit, source addresses, recent refusals, and the
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
  /** Countermeasure 3: distinct countries (logins and sends) per window. */
  readonly distinctCountries: readonly { readonly seconds: number; readonly count: number }[];
  /** Countermeasure 3: may the user send from abroad now, and why. */
  readonly abroad: { readonly allowed: boolean; readonly why: string; readonly until: EpochMs | null };
  /** Countermeasure 5: addresses the user may send as (empty = derived from the login). */
  readonly addresses: readonly SenderAddress[];
  /** Sending pace: messages per hour over each window (countermeasure 5's "database of pace"). */
  readonly pace: readonly { readonly name: string; readonly perHour: number }[];
  /** With the AS of each address (null when unknown, or with detection.familiarScope "network"): the familiar-operator exception compares these. */
  readonly sourceIps: readonly (SourceIpStat & { readonly asn: number | null })[];
  readonly suspension: Suspension | null;
  readonly history: readonly Suspension[];
  readonly recentDecisions: readonly DecisionRecord[];
}

export async function lookup(
  sender: SenderId,
  deps: { config: FumidaiConfig; counters: CounterStore; records: RecordStore; now: EpochMs; operators?: NetworkOperatorLookup | null },
): Promise<LookupReport> {
  const { config, counters, records, now } = deps;
  const operators = deps.operators ?? null;
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
    distinctCountries: counters.layout.distinctWindows.map((seconds, i) => ({ seconds, count: peek.distinctCountries?.[i] ?? 0 })),
    abroad: { ...abroadPermission(settings, config, now), until: settings?.abroadUntil ?? null },
    addresses: settings?.addresses ?? [],
    pace: config.limits.windows.map((w, i) => ({ name: w.name, perHour: Math.round(((peek.windows[i]?.messages ?? 0) * 3600 * 10) / w.seconds) / 10 })),
    sourceIps: (await counters.sourceIps(sender, now)).map((a) => ({ ...a, asn: operators?.asnOf(a.ip) ?? null })),
    suspension: history.find((s) => s.releasedAt === null) ?? null,
    history,
    recentDecisions: await records.recentDecisions(sender, 20),
  };
}
