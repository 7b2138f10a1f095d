import { createWriteStream, openSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { DEFAULT_START, Scenario, type AttackKind, type SimOptions } from '../sim/scenario.ts';

const USAGE = `usage: fumidai simulate --seed N [--users N] [--days N] [--start YYYY-MM-DD]
                         [--warmup-days N] [--attack-scale X] [--mix kind=X,...]
                         [--output FILE] [--quiet]

Writes a simulated provider's traffic as replay JSON Lines (docs/replay.md).
  --seed N          the scenario is a function of the seed and the options (default 1)
  --users N         accounts of the provider (default 5000)
  --days N          days of traffic (default 7)
  --start DATE      first day, midnight in Japan (default 2026-11-02, a Monday)
  --warmup-days N   N days of ordinary traffic before the first day (legitimate users
                    only, no attacks), then a "scoring" line: the replay scores only the
                    days after it (default 0: no warm-up, no scoring line)
  --attack-scale X  multiply every attack rate (default 1; 0 for no attacks)
  --mix kind=X,...  multiply single attack rates; kinds: blast, slowBotnet, slowProxy,
                    single, brute, stuffing (e.g. --mix blast=3,slowProxy=0)
  --output FILE     write there instead of standard output
`;

const KINDS: readonly AttackKind[] = ['blast', 'slowBotnet', 'slowProxy', 'single', 'brute', 'stuffing'];

function fail(msg: string): number {
  process.stderr.write(`fumidai simulate: ${msg}\n${USAGE}`);
  return 2;
}

function intOption(v: string | undefined, name: string, dflt: number, min: number): number | Error {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) return new Error(`--${name}: expected an integer of at least ${min}, got "${v}"`);
  return n;
}

export async function simulateCommand(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        seed: { type: 'string' },
        users: { type: 'string' },
        days: { type: 'string' },
        'warmup-days': { type: 'string' },
        start: { type: 'string' },
        'attack-scale': { type: 'string' },
        mix: { type: 'string' },
        output: { type: 'string', short: 'o' },
        quiet: { type: 'boolean', short: 'q' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
    }));
  } catch (e) {
    return fail((e as Error).message);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const seed = intOption(values.seed, 'seed', 1, 0);
  const users = intOption(values.users, 'users', 5000, 1);
  const days = intOption(values.days, 'days', 7, 1);
  const warmupDays = intOption(values['warmup-days'], 'warmup-days', 0, 0);
  for (const v of [seed, users, days, warmupDays]) if (v instanceof Error) return fail(v.message);
  let start = DEFAULT_START;
  if (values.start !== undefined) {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(values.start)) return fail('--start: expected a date such as 2026-11-02');
    start = Date.parse(`${values.start}T00:00:00+09:00`);
    if (Number.isNaN(start)) return fail(`--start: "${values.start}" is not a date`);
  }
  const attackScale = values['attack-scale'] === undefined ? 1 : Number(values['attack-scale']);
  if (!Number.isFinite(attackScale) || attackScale < 0) return fail('--attack-scale: expected a number of at least 0');
  const mix: Partial<Record<AttackKind, number>> = {};
  for (const part of (values.mix ?? '').split(',').filter((p) => p !== '')) {
    const [k, v] = part.split('=');
    if (!KINDS.includes(k as AttackKind)) return fail(`--mix: unknown attack kind "${k}"; kinds: ${KINDS.join(', ')}`);
    const x = Number(v);
    if (v === undefined || !Number.isFinite(x) || x < 0) return fail(`--mix: ${k}: expected a number of at least 0`);
    mix[k as AttackKind] = x;
  }
  const opts: SimOptions = { seed: seed as number, users: users as number, days: days as number, start, attackScale, mix, warmupDays: warmupDays as number };

  let out: Writable = process.stdout;
  if (values.output) {
    try {
      out = createWriteStream('', { fd: openSync(values.output, 'w') });
    } catch (e) {
      return fail(`cannot write ${values.output}: ${(e as Error).message}`);
    }
  }
  const write = async (lines: readonly string[]): Promise<void> => {
    // Chunks of about a megabyte, waiting for the stream when it is full.
    for (let i = 0; i < lines.length; i += 4096) {
      const text = `${lines.slice(i, i + 4096).join('\n')}\n`;
      if (!out.write(text)) await new Promise<void>((resolve) => out.once('drain', resolve));
    }
  };

  const began = performance.now();
  const scenario = new Scenario(opts);
  await write([...scenario.userLines()]);
  let lastProgress = began;
  const warmup = warmupDays as number;
  for (let day = -warmup; day < opts.days; day++) {
    await write(scenario.dayLines(day));
    const now = performance.now();
    if (!values.quiet && (now - lastProgress > 3000 || day === opts.days - 1) && now - began > 1000) {
      lastProgress = now;
      process.stderr.write(`simulate: day ${day + warmup + 1}/${warmup + opts.days}${day < 0 ? ' (warm-up)' : ''}, ${scenario.counts.lines.toLocaleString('en-US')} lines, ${((now - began) / 1000).toFixed(1)} s\n`);
    }
  }
  if (out !== process.stdout) await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  if (!values.quiet) {
    const c = scenario.counts;
    process.stderr.write(
      `simulate: seed ${opts.seed}, ${opts.users.toLocaleString('en-US')} users, ${opts.days} days${warmup > 0 ? ` after ${warmup} days of warm-up` : ''}: ${c.lines.toLocaleString('en-US')} lines, ` +
        `${c.messages.toLocaleString('en-US')} messages (${c.abuseMessages.toLocaleString('en-US')} abuse), ${c.auths.toLocaleString('en-US')} logins\n`,
    );
  }
  return 0;
}
