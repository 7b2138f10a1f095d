import type { FumidaiConfig } from '../config/config.ts';
import { senderId, type EpochMs } from '../engine/types.ts';
import type { RecordStore, SenderAddress, UserPatch, UserSettings } from '../store/record-store.ts';
import { parseSenderAddress } from './addresses.ts';

// Bulk import of sender identities and the abroad switch (countermeasures 5 and 3), for
// providers with millions of users: a JSON Lines stream is parsed as it arrives and
// written in batches, one transaction per batch (RecordStore.patchUsers), yielding to the
// event loop between batches so that a running policy server keeps answering. One line
// per user; fields present replace the stored ones, fields absent are kept:
//
//   {"user":"alice@example.jp","primary":"alice@example.jp","aliases":["a.sato@example.jp"],
//    "thirdParty":["alice.sato@gmail.com"],"allowAbroad":false}
//   {"user":"bob","addresses":["bob@example.jp","@bob-shop.example.jp"]}
//   {"user":"carol@example.jp","abroadUntil":"2026-12-08T00:00:00+09:00"}
//
// "addresses" (the replay format's field) are all primary/alias; "@domain" stands for
// every address of a domain. "spoofingExempt": true exempts a user from the check.

export interface ImportProblem {
  readonly line: number;
  readonly problem: string;
}

export interface ImportResult {
  readonly lines: number;
  readonly users: number;
  readonly addresses: number;
  readonly batches: number;
  readonly problems: readonly ImportProblem[];
  /** Problems beyond the first 100 are counted, not kept. */
  readonly problemCount: number;
  readonly seconds: number;
  readonly usersPerSecond: number;
}

export interface ImportOptions {
  readonly batchSize?: number;
  readonly now: EpochMs;
  /** Longest travel exception accepted (config.source.abroad.maxTravel). */
  readonly config: FumidaiConfig;
}

const KEYS = new Set(['user', 'primary', 'aliases', 'thirdParty', 'addresses', 'allowAbroad', 'abroadUntil', 'spoofingExempt']);

/** One import line as a patch, or an error naming the field. */
export function parseImportLine(text: string, opts: ImportOptions): UserPatch | Error {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return new Error(`not valid JSON (${(e as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return new Error('expected a JSON object');
  const o = doc as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.has(k)) return new Error(`unknown field "${k}" (known: ${[...KEYS].join(', ')})`);
  if (typeof o.user !== 'string' || o.user.trim() === '' || o.user.length > 320 || /\s/.test(o.user.trim())) return new Error('user: the sender ID (SASL login) as a string without spaces');
  const patch: { -readonly [K in keyof UserPatch]: UserPatch[K] } = { sender: senderId(o.user) };
  const addrs: SenderAddress[] = [];
  let hasAddresses = false;
  const take = (field: string, kind: SenderAddress['kind'], single: boolean): Error | null => {
    const v = o[field];
    if (v === undefined) return null;
    hasAddresses = true;
    const list = single ? [v] : v;
    if (!Array.isArray(list)) return new Error(`${field}: expected an array of addresses`);
    for (const [i, a] of list.entries()) {
      const parsed = parseSenderAddress(a, kind);
      if (parsed instanceof Error) return new Error(`${field}${single ? '' : `[${i}]`}: ${parsed.message}`);
      if (kind === 'third-party') addrs.push({ ...parsed, verifiedAt: opts.now });
      else addrs.push(parsed);
    }
    return null;
  };
  const err = take('primary', 'primary', true) ?? take('aliases', 'alias', false) ?? take('addresses', 'alias', false) ?? take('thirdParty', 'third-party', false);
  if (err) return err;
  if (hasAddresses) {
    const seen = new Set<string>();
    patch.addresses = addrs.filter((a) => !seen.has(a.address) && (seen.add(a.address), true));
  }
  if (o.allowAbroad !== undefined) {
    if (typeof o.allowAbroad !== 'boolean' && o.allowAbroad !== null) return new Error('allowAbroad: true, false or null (back to the default)');
    patch.allowAbroad = o.allowAbroad;
  }
  if (o.abroadUntil !== undefined) {
    const until = parseUntil(o.abroadUntil, opts);
    if (until instanceof Error) return new Error(`abroadUntil: ${until.message}`);
    patch.abroadUntil = until;
  }
  if (o.spoofingExempt !== undefined) {
    if (typeof o.spoofingExempt !== 'boolean') return new Error('spoofingExempt: true or false');
    patch.spoofingExempt = o.spoofingExempt;
  }
  return patch;
}

/** A travel exception's end: an ISO time with zone, at most maxTravel ahead; null clears it. */
export function parseUntil(v: unknown, opts: { now: EpochMs; config: FumidaiConfig }): EpochMs | null | Error {
  if (v === null) return null;
  if (typeof v !== 'string' || !/(Z|[+-]\d{2}:?\d{2})$/i.test(v)) return new Error('expected an ISO 8601 time with a zone, e.g. "2026-12-08T00:00:00+09:00"');
  const t = Date.parse(v);
  if (Number.isNaN(t)) return new Error(`"${v}" is not a valid time`);
  const max = opts.config.source.abroad.maxTravel;
  if (t - opts.now > max * 1000) return new Error(`more than ${Math.round(max / 86400)} days ahead (source.abroad.maxTravel)`);
  return t;
}

/** Imports JSON Lines from a stream of text chunks. Bad lines are reported and skipped. */
export async function importIdentities(chunks: AsyncIterable<string | Buffer>, records: RecordStore, opts: ImportOptions): Promise<ImportResult> {
  const t0 = performance.now();
  const batchSize = opts.batchSize ?? 5000;
  const problems: ImportProblem[] = [];
  let problemCount = 0;
  let lines = 0;
  let users = 0;
  let addresses = 0;
  let batches = 0;
  let batch: UserPatch[] = [];
  let rest = '';
  const decoder = new TextDecoder('utf-8');

  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const b = batch;
    batch = [];
    if (records.patchUsers) {
      await records.patchUsers(b, opts.now);
    } else {
      for (const p of b) {
        const existing = await records.user(p.sender);
        const { sender, ...fields } = p;
        const merged: Record<string, unknown> = { sender, limits: null, bulkWindows: [], createdAt: opts.now, ...existing, ...fields };
        for (const k of Object.keys(merged)) if (merged[k] === null && k !== 'limits') delete merged[k];
        await records.putUser(merged as unknown as UserSettings);
      }
    }
    batches++;
    // Let the policy server answer between two batches.
    await new Promise<void>((resolve) => setImmediate(resolve));
  };
  const line = async (text: string): Promise<void> => {
    lines++;
    if (text.trim() === '') return;
    const p = parseImportLine(text, opts);
    if (p instanceof Error) {
      problemCount++;
      if (problems.length < 100) problems.push({ line: lines, problem: p.message });
      return;
    }
    users++;
    addresses += p.addresses?.length ?? 0;
    batch.push(p);
    if (batch.length >= batchSize) await flush();
  };

  for await (const chunk of chunks) {
    // A multi-byte character may be split between two chunks: decode as a stream.
    const text = rest + (typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    let start = 0;
    let nl = text.indexOf('\n');
    while (nl >= 0) {
      await line(text.slice(start, nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl));
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    rest = text.slice(start);
  }
  if (rest !== '') await line(rest);
  await flush();
  const seconds = (performance.now() - t0) / 1000;
  return { lines, users, addresses, batches, problems, problemCount, seconds, usersPerSecond: Math.round(users / Math.max(seconds, 1e-6)) };
}
