import assert from 'node:assert/strict';
import { simulateCommand } from '../../src/cli/simulate-command.ts';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { configFromObject } from '../../src/config/load.ts';
import { LineParser, ReplayInputError } from '../../src/doors/replay/reader.ts';
import { hostIn, IP_RANGES, rangeOf } from '../../src/sim/ip-ranges.ts';
import { Rng } from '../../src/sim/prng.ts';
import { DEFAULT_START, Scenario, type SimOptions } from '../../src/sim/scenario.ts';

function generate(opts: Partial<SimOptions> = {}): string[] {
  const o: SimOptions = { seed: 1, users: 400, days: 2, start: DEFAULT_START, attackScale: 20, mix: {}, ...opts };
  const s = new Scenario(o);
  const lines = [...s.userLines()];
  for (let d = -(o.warmupDays ?? 0); d < o.days; d++) lines.push(...s.dayLines(d));
  return lines;
}

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const parsed = (lines: readonly string[]): Record<string, unknown>[] => lines.map((l) => JSON.parse(l) as Record<string, unknown>);

describe('simulate', () => {
  it('the PRNG is deterministic, independent per stream, and in range', () => {
    const a = new Rng(5, 'user', 1);
    const b = new Rng(5, 'user', 1);
    const c = new Rng(5, 'user', 2);
    const xs = Array.from({ length: 100 }, () => a.next());
    assert.deepEqual(Array.from({ length: 100 }, () => b.next()), xs);
    assert.notDeepEqual(Array.from({ length: 100 }, () => c.next()), xs);
    // Known first values pin the algorithm: a change here changes every scenario.
    assert.deepEqual(Array.from({ length: 3 }, () => new Rng(1, 'x').next()), Array.from({ length: 3 }, () => new Rng(1, 'x').next()));
    let sum = 0;
    for (let i = 0; i < 20_000; i++) {
      const f = a.float();
      assert.ok(f >= 0 && f < 1);
      sum += f;
    }
    assert.ok(Math.abs(sum / 20_000 - 0.5) < 0.01);
    let p = 0;
    for (let i = 0; i < 20_000; i++) p += a.poisson(3);
    assert.ok(Math.abs(p / 20_000 - 3) < 0.1);
  });

  it('the same seed gives the same file; another seed another file', () => {
    const a = generate({ seed: 7 });
    const b = generate({ seed: 7 });
    const c = generate({ seed: 8 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  it('writes valid replay lines in time order, labelled, with addresses from the table', () => {
    const lines = generate({ seed: 3 });
    const parser = new LineParser(configFromObject({}));
    let last = 0;
    const labels = new Set<string>();
    const kinds = new Set<string>();
    const groups = new Set<string>();
    const ids = new Set<string>();
    for (const [i, text] of lines.entries()) {
      const l = parser.parse(text, i + 1);
      assert.ok(l !== null && !(l instanceof ReplayInputError), `line ${i + 1}: ${String(l)}`);
      assert.ok(l.t >= last, `line ${i + 1} is out of time order`);
      last = l.t;
      kinds.add(l.type);
      if (l.type === 'user' || l.type === 'scoring') continue;
      labels.add(l.label ?? 'none');
      if (l.group) groups.add(l.group);
      assert.ok(l.ip !== null && rangeOf(l.ip) !== null, `line ${i + 1}: ${l.ip} is not in the address table`);
      if (l.type === 'message') {
        assert.ok(!ids.has(l.id), `duplicate id ${l.id}`);
        ids.add(l.id);
      }
    }
    assert.deepEqual([...kinds].sort(), ['auth', 'message', 'user']);
    assert.deepEqual([...labels].sort(), ['abuse', 'legit']);
    for (const g of ['blast', 'slow-botnet', 'slow-proxy', 'single-ip', 'stuffing']) assert.ok(groups.has(g), `attack ${g} present`);
  });

  it('user lines carry addresses, allowAbroad and bulk senders\' limit overrides', () => {
    const users = generate({ seed: 2, users: 3000, days: 1 }).filter((l) => l.includes('"type":"user"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(users.length, 3000);
    assert.ok(users.every((u) => Array.isArray(u.addresses) && typeof u.allowAbroad === 'boolean'));
    const bulk = users.filter((u) => u.group === 'bulk-override');
    assert.ok(bulk.length >= 1);
    assert.ok(bulk.every((u) => typeof u.limits === 'object'));
    assert.ok(users.some((u) => u.group === 'bulk-no-override' && u.limits === undefined));
    assert.ok(users.some((u) => u.group === 'traveller'));
  });

  it('without warm-up a scenario is exactly the file it was before warm-up existed (published figures stay reproducible)', () => {
    const lines = generate({ seed: 5, users: 300, days: 2, attackScale: 20 });
    assert.equal(lines.length, 8301);
    // Digest of this scenario as generated before --warmup-days (commit 523e256). A change
    // here changes every scenario file, and every figure in docs/replay-results.md with it.
    assert.equal(createHash('sha256').update(lines.join('\n')).digest('hex'), 'ab70e3af9f7d349ab8bfc9d215bf3ef82383ab36466fbd41fe34c67ad86df071');
    assert.deepEqual(generate({ seed: 5, users: 300, days: 2, attackScale: 20, warmupDays: 0 }), lines);
    assert.ok(!lines.some((l) => l.includes('"type":"scoring"')));
  });

  it('warm-up: days of legitimate traffic before the measured days, one scoring line at the start, the same attacks', () => {
    const plain = parsed(generate({ seed: 6, users: 1500, days: 2, attackScale: 20 }));
    const warm = parsed(generate({ seed: 6, users: 1500, days: 2, attackScale: 20, warmupDays: 8 }));
    const begin = DEFAULT_START - 8 * DAY;
    const users = warm.filter((l) => l.type === 'user');
    assert.equal(users.length, 1500);
    assert.ok(users.every((u) => Date.parse(u.t as string) === begin), 'user lines at the start of the warm-up');
    const scoring = warm.filter((l) => l.type === 'scoring');
    assert.deepEqual(scoring, [{ type: 'scoring', t: new Date(DEFAULT_START).toISOString(), warmupDays: 8 }]);
    const at = warm.indexOf(scoring[0]!);
    const before = warm.slice(users.length, at);
    const after = warm.slice(at + 1);
    assert.ok(before.every((l) => Date.parse(l.t as string) >= begin && Date.parse(l.t as string) < DEFAULT_START));
    assert.ok(after.every((l) => Date.parse(l.t as string) >= DEFAULT_START));
    // Warm-up: legitimate users only, every day, with the bulk senders' newsletters.
    assert.ok(before.every((l) => l.label === 'legit' && l.group === undefined), 'no attacks in the warm-up');
    const messages = before.filter((l) => l.type === 'message');
    const perDay = new Set(messages.map((l) => Math.floor((Date.parse(l.t as string) - begin) / DAY)));
    assert.equal(perDay.size, 8);
    const legit = (ls: Record<string, unknown>[]): number => ls.filter((l) => l.type === 'message' && l.label === 'legit').length;
    assert.ok(messages.length / 8 > 0.5 * (legit(plain) / 2), 'warm-up days carry about as much mail as measured days');
    // Each bulk sender's newsletter (150-800 recipients on its weekday) is in the 8 days.
    const bulk = users.filter((u) => String(u.group).startsWith('bulk')).map((u) => u.user);
    assert.ok(bulk.length >= 1);
    for (const id of bulk) {
      const perDay = new Map<number, number>();
      for (const l of messages) if (l.user === id) perDay.set(Math.floor((Date.parse(l.t as string) - begin) / DAY), (perDay.get(Math.floor((Date.parse(l.t as string) - begin) / DAY)) ?? 0) + (l.rcpt as string[]).length);
      assert.ok(Math.max(...perDay.values()) >= 150, `newsletter of ${String(id)} in the warm-up`);
    }
    // The measured days have the same attacks (message ids aside) as without warm-up.
    const abuse = (ls: Record<string, unknown>[]): string[] => ls.filter((l) => l.label === 'abuse').map((l) => JSON.stringify({ ...l, id: undefined }));
    assert.ok(abuse(plain).length > 100);
    assert.deepEqual(abuse(after), abuse(plain));
    // ... and the same users sending about as much (their networks moved on through the warm-up).
    assert.ok(Math.abs(legit(after) - legit(plain)) < 0.02 * legit(plain), `${legit(after)} vs ${legit(plain)} legitimate messages`);
    // Deterministic.
    assert.deepEqual(parsed(generate({ seed: 6, users: 1500, days: 2, attackScale: 20, warmupDays: 8 })), warm);
    assert.throws(() => new Scenario({ seed: 1, users: 10, days: 1, start: DEFAULT_START, attackScale: 1, mix: {}, warmupDays: -1 }), /warmupDays/);
  });

  it('legitimate daily rhythm: more mail at 10-22h JST than at 2-5h', () => {
    const lines = generate({ seed: 4, users: 2000, days: 2, attackScale: 0 });
    const byHour = new Array<number>(24).fill(0);
    for (const l of lines) {
      if (!l.includes('"type":"message"')) continue;
      const t = Date.parse((JSON.parse(l) as { t: string }).t);
      byHour[new Date(t + 9 * 3600_000).getUTCHours()]!++;
    }
    const day = byHour.slice(10, 22).reduce((a, b) => a + b, 0) / 12;
    const night = byHour.slice(2, 5).reduce((a, b) => a + b, 0) / 3;
    assert.ok(day > 5 * night, `day ${day}/h vs night ${night}/h`);
  });

  it('the address table: valid CIDR blocks, Japan and abroad', () => {
    for (const r of IP_RANGES) assert.match(r.cidr, /^\d+\.\d+\.\d+\.\d+\/\d+$/);
    const countries = new Set(IP_RANGES.map((r) => r.country));
    for (const c of ['JP', 'US', 'BR', 'VN', 'IN', 'RU', 'CN', 'DE']) assert.ok(countries.has(c), c);
    assert.equal(rangeOf('126.1.2.3')?.country, 'JP');
    assert.equal(rangeOf('73.1.2.3')?.country, 'US');
    assert.equal(rangeOf('10.0.0.1'), null);
  });

  it('never draws from the parts of a block that GeoIP places in another country', () => {
    const softbank = IP_RANGES.find((r) => r.cidr === '126.0.0.0/9' && r.use === 'jp-fixed')!;
    assert.deepEqual(softbank.exclude, ['126.52.128.0/19']);
    const r = new Rng(9, 'exclude');
    for (let i = 0; i < 50_000; i++) {
      const [a, b, c] = hostIn(r, softbank).split('.').map(Number) as [number, number, number];
      assert.ok(!(a === 126 && b === 52 && c >= 128 && c < 160), `drew ${a}.${b}.${c}.x`);
    }
  });

  it('fumidai simulate refuses a bad --warmup-days with a message naming the option', async () => {
    const said: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array) => (said.push(String(chunk)), true)) as typeof process.stderr.write;
    try {
      assert.equal(await simulateCommand(['--seed', '1', '--warmup-days', 'abc']), 2);
      assert.equal(await simulateCommand(['--seed', '1', '--warmup-days=-2']), 2);
    } finally {
      process.stderr.write = write;
    }
    assert.match(said.join(''), /--warmup-days: expected an integer of at least 0, got "abc"/);
    assert.match(said.join(''), /--warmup-days: expected an integer of at least 0, got "-2"/);
  });
});
