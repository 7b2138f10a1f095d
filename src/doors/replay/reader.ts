import { createReadStream } from 'node:fs';
import { isIP } from 'node:net';
import type { FumidaiConfig } from '../../config/config.ts';
import type { WindowLimit } from '../../store/counter-store.ts';
import { senderId, type EpochMs, type SenderId } from '../../engine/types.ts';

// The replay file format (ARCHITECTURE.md §5, docs/replay.md): JSON Lines ordered by
// time. This file only parses and validates; it never decides anything. Unknown
// fields are ignored. `label` and `group` are read for the metrics and never reach the
// engine (the runner keeps them apart from the events it builds).

export type ReplayLabel = 'legit' | 'abuse';

interface LineBase {
  /** 1-based line number in the file. */
  readonly line: number;
  readonly t: EpochMs;
  readonly label: ReplayLabel | null;
  /**
   * Metrics only, like label: on a user line the kind of user (e.g. "bulk-no-override"),
   * on an abuse line the kind of attack (e.g. "blast").
   */
  readonly group: string | null;
}

export interface UserLine extends LineBase {
  readonly type: 'user';
  readonly user: SenderId;
  /** Limits per configured window, defaults filled in; null when the line sets none. */
  readonly limits: readonly WindowLimit[] | null;
  /** Countermeasure 3: the "allow sending from abroad" switch; absent = the operator default. */
  readonly allowAbroad?: boolean;
  /** Countermeasure 3: travel exception until this time (null clears it). */
  readonly abroadUntil?: EpochMs | null;
  /** Countermeasure 5: addresses the user may send as. */
  readonly addresses?: readonly string[];
}

export interface AuthLine extends LineBase {
  readonly type: 'auth';
  readonly user: SenderId;
  readonly ip: string | null;
  readonly ok: boolean;
  readonly protocol: string | undefined;
  readonly method: string | undefined;
}

export interface MessageLine extends LineBase {
  readonly type: 'message';
  readonly id: string;
  /** Null for a message submitted without SMTP AUTH. */
  readonly user: SenderId | null;
  readonly ip: string | null;
  readonly mailFrom: string;
  readonly headerFrom: string | undefined;
  readonly rcpt: readonly string[];
  readonly size: number;
}

/**
 * Where scoring begins: the lines before it are a warm-up (history the engine builds up
 * exactly as from any other line), and the summary's figures count only the lines after
 * it. Never reaches the engine. At most one per file.
 */
export interface ScoringLine extends LineBase {
  readonly type: 'scoring';
}

export type ReplayLine = UserLine | AuthLine | MessageLine | ScoringLine;

/** A line that cannot be replayed; the message names the line and what is wrong. */
export class ReplayInputError extends Error {
  override readonly name = 'ReplayInputError';
  constructor(
    readonly line: number,
    readonly problem: string,
  ) {
    super(`line ${line}: ${problem}`);
  }
}

const TIME_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i;

/** The `limits` keys a config accepts: messagesPer<Window> and recipientsPer<Window>. */
export function limitKeys(config: FumidaiConfig): Map<string, { window: number; series: 'messages' | 'recipients' }> {
  const keys = new Map<string, { window: number; series: 'messages' | 'recipients' }>();
  config.limits.windows.forEach((w, i) => {
    const name = w.name
      .split('-')
      .map((p) => (p === '' ? '' : p[0]!.toUpperCase() + p.slice(1)))
      .join('');
    keys.set(`messagesPer${name}`, { window: i, series: 'messages' });
    keys.set(`recipientsPer${name}`, { window: i, series: 'recipients' });
  });
  return keys;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Turns text lines into validated replay lines for one config. */
export class LineParser {
  private readonly keys: ReturnType<typeof limitKeys>;
  private readonly defaults: readonly WindowLimit[];

  constructor(config: FumidaiConfig) {
    this.keys = limitKeys(config);
    this.defaults = config.limits.windows.map((w) => ({ messages: w.messages, recipients: w.recipients }));
  }

  /** The parsed line, null for a blank line, or an error naming the line. */
  parse(text: string, line: number): ReplayLine | null | ReplayInputError {
    // trim() only for lines that start blank: a JSON line starts with '{'.
    if (text.length === 0 || (text.charCodeAt(0) <= 32 && text.trim() === '')) return null;
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      return new ReplayInputError(line, `not valid JSON (${(e as Error).message})`);
    }
    if (!isObject(doc)) return new ReplayInputError(line, 'expected a JSON object');

    const t = parseTime(doc.t);
    if (t instanceof Error) return fail(line, `t: ${t.message}`);
    let label: ReplayLabel | null = null;
    if (doc.label !== undefined && doc.label !== null) {
      if (doc.label !== 'legit' && doc.label !== 'abuse') return fail(line, `label: expected "legit" or "abuse", got ${JSON.stringify(doc.label)}`);
      label = doc.label;
    }
    if (doc.group !== undefined && doc.group !== null && typeof doc.group !== 'string') return fail(line, 'group: expected a string');
    const group = (doc.group as string | null | undefined) ?? null;

    switch (doc.type) {
      case 'message': {
        if (typeof doc.id !== 'string' || doc.id === '') return fail(line, 'id: a message needs a non-empty string id');
        const user = optionalUser(doc.user);
        if (user instanceof Error) return fail(line, `user: ${user.message}`);
        const ip = parseIp(doc.ip);
        if (ip instanceof Error) return fail(line, `ip: ${ip.message}`);
        if (!Array.isArray(doc.rcpt) || doc.rcpt.length === 0) return fail(line, 'rcpt: expected a non-empty array of recipient addresses');
        for (let i = 0; i < doc.rcpt.length; i++) {
          const r: unknown = doc.rcpt[i];
          if (typeof r !== 'string' || r === '') return fail(line, `rcpt[${i}]: expected a non-empty string`);
        }
        if (doc.mailFrom !== undefined && typeof doc.mailFrom !== 'string') return fail(line, 'mailFrom: expected a string');
        if (doc.headerFrom !== undefined && doc.headerFrom !== null && typeof doc.headerFrom !== 'string') return fail(line, 'headerFrom: expected a string');
        let size: number;
        if (doc.size !== undefined && doc.size !== null) {
          if (!Number.isSafeInteger(doc.size) || (doc.size as number) < 0) return fail(line, 'size: expected a non-negative integer (bytes)');
          size = doc.size as number;
        } else {
          size = typeof doc.raw === 'string' ? Buffer.byteLength(doc.raw) : 0;
        }
        return {
          type: 'message',
          line,
          t,
          label,
          group,
          id: doc.id,
          user,
          ip,
          mailFrom: (doc.mailFrom as string | undefined) ?? '',
          headerFrom: (doc.headerFrom as string | null | undefined) ?? undefined,
          rcpt: doc.rcpt as string[],
          size,
        };
      }
      case 'auth': {
        const user = requiredUser(doc.user);
        if (user instanceof Error) return fail(line, `user: ${user.message}`);
        const ip = parseIp(doc.ip);
        if (ip instanceof Error) return fail(line, `ip: ${ip.message}`);
        if (typeof doc.ok !== 'boolean') return fail(line, 'ok: expected true (login succeeded) or false (failed)');
        if (doc.protocol !== undefined && typeof doc.protocol !== 'string') return fail(line, 'protocol: expected a string');
        if (doc.method !== undefined && typeof doc.method !== 'string') return fail(line, 'method: expected a string');
        return { type: 'auth', line, t, label, group, user, ip, ok: doc.ok, protocol: doc.protocol as string | undefined, method: doc.method as string | undefined };
      }
      case 'user': {
        const user = requiredUser(doc.user);
        if (user instanceof Error) return fail(line, `user: ${user.message}`);
        const limits = this.limits(doc.limits);
        if (limits instanceof Error) return fail(line, `limits: ${limits.message}`);
        if (doc.addresses !== undefined && (!Array.isArray(doc.addresses) || doc.addresses.some((a) => typeof a !== 'string'))) {
          return fail(line, 'addresses: expected an array of strings');
        }
        for (const flag of ['allowAbroad', 'poolConsent'] as const) {
          if (doc[flag] !== undefined && typeof doc[flag] !== 'boolean') return fail(line, `${flag}: expected true or false`);
        }
        // Countermeasures 3 and 5: the abroad switch, a travel exception, the user's addresses.
        let abroadUntil: EpochMs | null | undefined;
        if (doc.abroadUntil !== undefined && doc.abroadUntil !== null) {
          const until = parseTime(doc.abroadUntil);
          if (until instanceof Error) return fail(line, `abroadUntil: ${until.message}`);
          abroadUntil = until;
        } else if (doc.abroadUntil === null) {
          abroadUntil = null;
        }
        return {
          type: 'user',
          line,
          t,
          label,
          group,
          user,
          limits,
          ...(typeof doc.allowAbroad === 'boolean' ? { allowAbroad: doc.allowAbroad } : {}),
          ...(abroadUntil !== undefined ? { abroadUntil } : {}),
          ...(doc.addresses !== undefined ? { addresses: doc.addresses as string[] } : {}),
        };
      }
      case 'scoring':
        return { type: 'scoring', line, t, label: null, group: null };
      case undefined:
        return fail(line, 'type: missing; expected "user", "auth", "message" or "scoring"');
      default:
        return fail(line, `type: unknown type ${JSON.stringify(doc.type)}; expected "user", "auth", "message" or "scoring"`);
    }
  }

  /** Maps {"messagesPerHour": 200, ...} onto the configured windows; other values keep the defaults. */
  private limits(v: unknown): readonly WindowLimit[] | null | Error {
    if (v === undefined || v === null) return null;
    if (!isObject(v)) return new Error('expected an object such as {"messagesPerHour": 200}');
    const out = this.defaults.map((d) => ({ ...d }));
    for (const [key, value] of Object.entries(v)) {
      const k = this.keys.get(key);
      if (k === undefined) {
        return new Error(`unknown limit "${key}"; the configured windows accept ${[...this.keys.keys()].join(', ')}`);
      }
      if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 65535) {
        return new Error(`${key}: expected an integer from 1 to 65535, got ${JSON.stringify(value)}`);
      }
      out[k.window]![k.series] = value as number;
    }
    return out;
  }
}

function fail(line: number, problem: string): ReplayInputError {
  return new ReplayInputError(line, problem);
}

function parseTime(v: unknown): EpochMs | Error {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) return new Error('a number must be milliseconds since 1970 (non-negative)');
    return Math.floor(v);
  }
  if (typeof v !== 'string') return new Error('missing; expected an ISO 8601 time with a zone, e.g. "2026-11-02T09:00:00+09:00"');
  // A time without a zone would be read in the machine's local zone: not reproducible.
  if (!TIME_WITH_ZONE.test(v)) return new Error(`"${v}" is not an ISO 8601 time with a zone (Z or +09:00)`);
  const t = Date.parse(v);
  if (Number.isNaN(t)) return new Error(`"${v}" is not a valid time`);
  return t;
}

function requiredUser(v: unknown): SenderId | Error {
  if (typeof v !== 'string' || v.trim() === '') return new Error('expected the sender ID (SASL login) as a non-empty string');
  return senderId(v);
}

function optionalUser(v: unknown): SenderId | null | Error {
  if (v === undefined || v === null) return null;
  return requiredUser(v);
}

function parseIp(v: unknown): string | null | Error {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || isIP(v) === 0) return new Error(`expected an IPv4 or IPv6 address, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Lines of a file (or stdin for "-") without their line ends, in batches (one per
 * chunk read) so that a replay does not pay one promise per line.
 */
export async function* readLineBatches(file: string): AsyncGenerator<string[]> {
  const stream = file === '-' ? process.stdin : createReadStream(file, { highWaterMark: 1 << 20 });
  stream.setEncoding('utf8');
  let rest = '';
  for await (const chunk of stream as AsyncIterable<string>) {
    const text = rest + chunk;
    const batch: string[] = [];
    let start = 0;
    let nl = text.indexOf('\n', start);
    while (nl >= 0) {
      const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      batch.push(text.slice(start, end));
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    rest = text.slice(start);
    if (batch.length > 0) yield batch;
  }
  if (rest.length > 0) yield [rest.endsWith('\r') ? rest.slice(0, -1) : rest];
}
