import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { replayCommand } from '../../src/cli/replay-command.ts';
import { configFromObject } from '../../src/config/load.ts';
import { LineParser, ReplayInputError, type UserLine } from '../../src/doors/replay/reader.ts';
import { formatSummary } from '../../src/doors/replay/report.ts';
import { ReplayRunner } from '../../src/doors/replay/runner.ts';
import { senderId, type EngineEvent } from '../../src/engine/types.ts';
import { Scenario, DEFAULT_START } from '../../src/sim/scenario.ts';

const dir = mkdtempSync(join(tmpdir(), 'fumidai-replay-'));
const T = Date.parse('2026-11-02T09:00:00+09:00');
const iso = (ms: number): string => new Date(T + ms).toISOString();
const line = (o: Record<string, unknown>): string => JSON.stringify(o);

function write(name: string, lines: readonly string[]): string {
  const f = join(dir, name);
  writeFileSync(f, `${lines.join('\n')}\n`);
  return f;
}

/** Runs the real command quietly, output to a file; returns exit code and output lines. */
async function replayFile(file: string, extra: string[] = [], configDoc: unknown = {}): Promise<{ code: number; out: string[] }> {
  const out = `${file}.out`;
  const saved = process.stderr.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    const code = await replayCommand(configFromObject(configDoc), [file, '--output', out, '--quiet', '--json-summary', ...extra]);
    let text = '';
    try {
      text = readFileSync(out, 'utf8');
    } catch {
      // no output file
    }
    return { code, out: text.split('\n').filter((l) => l !== '') };
  } finally {
    process.stderr.write = saved;
  }
}

function smallScenario(seed: number): string[] {
  const s = new Scenario({ seed, users: 300, days: 2, start: DEFAULT_START, attackScale: 40, mix: {} });
  const lines = [...s.userLines()];
  for (let d = 0; d < 2; d++) lines.push(...s.dayLines(d));
  return lines;
}

after(() => rmSync(dir, { recursive: true, force: true }));

describe('replay: determinism and label isolation', () => {
  const scenario = smallScenario(11);
  const file = write('scenario.jsonl', scenario);

  it('the same file replayed twice gives byte-identical output', async () => {
    const a = await replayFile(file);
    const b = await replayFile(file);
    assert.equal(a.code, 0);
    assert.ok(a.out.length > 1000, `expected many output lines, got ${a.out.length}`);
    assert.deepEqual(a.out, b.out);
    assert.ok(a.out.some((l) => l.includes('"type":"suspend"')), 'the scenario has attacks that get suspended');
  });

  it('labels never change decisions: flipped or removed labels give the same message and effect lines', async () => {
    const flipped = scenario.map((l) => l.replace('"label":"abuse"', '"label":"LEGIT_TMP"').replace('"label":"legit"', '"label":"abuse"').replace('"label":"LEGIT_TMP"', '"label":"legit"'));
    const stripped = scenario.map((l) => l.replace(/,"label":"(legit|abuse)"/, '').replace(/,"group":"[^"]*"/, ''));
    const base = await replayFile(file);
    const f = await replayFile(write('flipped.jsonl', flipped));
    const s = await replayFile(write('stripped.jsonl', stripped));
    const body = (r: { out: string[] }): string[] => r.out.slice(0, -1);
    assert.deepEqual(body(f), body(base));
    assert.deepEqual(body(s), body(base));
    const summary = JSON.parse(s.out.at(-1)!) as { labels?: unknown };
    assert.equal(summary.labels, undefined, 'no label figures without labels');
  });

  it('unknown fields are ignored', async () => {
    const extra = scenario.map((l, i) => (i % 3 === 0 ? l.replace(/}$/, ',"x-unknown":{"deep":[1,2]},"raw":"ignored"}') : l));
    const base = await replayFile(file);
    const r = await replayFile(write('extra.jsonl', extra));
    assert.deepEqual(r.out.slice(0, -1), base.out.slice(0, -1));
  });
});

describe('replay: input validation', () => {
  const config = configFromObject({});
  const parser = new LineParser(config);

  it('maps user limits onto the configured windows by name, keeping defaults elsewhere', () => {
    const u = parser.parse(line({ type: 'user', t: iso(0), user: 'U1', limits: { messagesPerHour: 200, recipientsPerDay: 500, messagesPerMinute: 5 } }), 1) as UserLine;
    assert.equal(u.type, 'user');
    assert.equal(u.user, senderId('u1'));
    assert.deepEqual(u.limits, [
      { messages: 5, recipients: 100 },
      { messages: 200, recipients: 500 },
      { messages: 1000, recipients: 500 },
    ]);
    const none = parser.parse(line({ type: 'user', t: iso(0), user: 'u2' }), 2) as UserLine;
    assert.equal(none.limits, null);
  });

  it('window names with dashes become camel case keys', () => {
    const p = new LineParser(configFromObject({ limits: { windows: [{ name: 'ten-minutes', seconds: '10m', messages: 50, recipients: 100 }] } }));
    const u = p.parse(line({ type: 'user', t: iso(0), user: 'u', limits: { messagesPerTenMinutes: 7 } }), 1) as UserLine;
    assert.deepEqual(u.limits, [{ messages: 7, recipients: 100 }]);
  });

  it('unknown or bad limit keys are errors naming the line and the accepted keys', () => {
    const e = parser.parse(line({ type: 'user', t: iso(0), user: 'u', limits: { messagesPerWeek: 10 } }), 7);
    assert.ok(e instanceof ReplayInputError);
    assert.equal(e.line, 7);
    assert.match(e.message, /^line 7: limits: unknown limit "messagesPerWeek"/);
    assert.match(e.message, /messagesPerHour/);
    const v = parser.parse(line({ type: 'user', t: iso(0), user: 'u', limits: { messagesPerHour: 0 } }), 8);
    assert.match((v as Error).message, /^line 8: limits: messagesPerHour: expected an integer from 1 to 65535/);
  });

  it('bad lines are reported with their line number', () => {
    const cases: [string, RegExp][] = [
      ['{not json', /^line 3: not valid JSON/],
      ['[1,2]', /^line 3: expected a JSON object/],
      [line({ type: 'message', id: 'm', user: 'u', ip: '1.2.3.4', rcpt: ['a@b'] }), /^line 3: t: missing/],
      [line({ type: 'message', t: '2026-11-02T09:00:00', id: 'm', rcpt: ['a@b'] }), /^line 3: t: .*with a zone/],
      [line({ type: 'connect', t: iso(0) }), /^line 3: type: unknown type "connect"/],
      [line({ type: 'message', t: iso(0), id: 'm', user: 'u', ip: '1.2.3.999', rcpt: ['a@b'] }), /^line 3: ip: expected an IPv4 or IPv6 address/],
      [line({ type: 'message', t: iso(0), id: 'm', user: 'u', rcpt: [] }), /^line 3: rcpt: expected a non-empty array/],
      [line({ type: 'message', t: iso(0), user: 'u', rcpt: ['a@b'] }), /^line 3: id: /],
      [line({ type: 'auth', t: iso(0), user: 'u', ip: '1.2.3.4' }), /^line 3: ok: expected true/],
      [line({ type: 'auth', t: iso(0), user: 'u', ok: true, label: 'spam' }), /^line 3: label: expected "legit" or "abuse"/],
    ];
    for (const [text, re] of cases) {
      const r = parser.parse(text, 3);
      assert.ok(r instanceof ReplayInputError, `${text} should be rejected`);
      assert.match(r.message, re);
    }
    assert.equal(parser.parse('   ', 4), null, 'blank lines are skipped');
  });

  it('a bad line stops the replay with exit code 2; --skip-invalid skips it and counts it', async () => {
    const lines = [
      line({ type: 'user', t: iso(0), user: 'u1' }),
      line({ type: 'message', t: iso(1000), id: 'm1', user: 'u1', ip: '126.1.2.3', rcpt: ['a@example.com'] }),
      '{"type":"message",',
      line({ type: 'message', t: iso(500), id: 'm0', user: 'u1', ip: '126.1.2.3', rcpt: ['a@example.com'] }),
      line({ type: 'message', t: iso(2000), id: 'm2', user: 'u1', ip: '126.1.2.3', rcpt: ['a@example.com'] }),
    ];
    const file = write('bad.jsonl', lines);
    const strict = await replayFile(file);
    assert.equal(strict.code, 2);
    assert.equal(strict.out.length, 1, 'output up to the bad line is kept, no summary');
    const skipping = await replayFile(file, ['--skip-invalid']);
    assert.equal(skipping.code, 0);
    const summary = JSON.parse(skipping.out.at(-1)!) as { lines: { skipped: number; message: number } };
    assert.equal(summary.lines.skipped, 2, 'the broken line and the one out of time order');
    assert.equal(summary.lines.message, 2);
  });

  it('an unusable file named in the config stops the replay with exit code 2 and the setting named', async () => {
    const file = write('one.jsonl', [line({ type: 'user', t: iso(0), user: 'u1' })]);
    const saved = process.stderr.write;
    let said = '';
    process.stderr.write = ((chunk: string) => ((said += chunk), true)) as typeof process.stderr.write;
    try {
      const code = await replayCommand(configFromObject({ source: { reputation: { asnDatabase: join(dir, 'no-such-folder') } } }), [file, '--summary-only', '--quiet']);
      assert.equal(code, 2);
    } finally {
      process.stderr.write = saved;
    }
    assert.match(said, /^fumidai replay: source\.reputation\.asnDatabase: .*no asn-ipv4-num\.csv/);
    assert.doesNotMatch(said, /\n\s+at /, 'no stack trace');
  });

  it('time order is checked', async () => {
    const r = new ReplayRunner({ config });
    assert.equal(await r.line(line({ type: 'user', t: iso(5000), user: 'u' }), 1), null);
    const e = await r.line(line({ type: 'user', t: iso(4000), user: 'u' }), 2);
    assert.match(e!.message, /^line 2: time .* is earlier than the previous line's/);
    await r.close();
  });
});

describe('replay: translation like the Postfix door', () => {
  it('one RCPT per recipient with the admitted count, then END-OF-MESSAGE with the admitted recipients', async () => {
    const config = configFromObject({ limits: { windows: [{ name: 'minute', seconds: 60, messages: 10, recipients: 3 }] } });
    const r = new ReplayRunner({ config });
    const seen: EngineEvent[] = [];
    const decide = r.engine.decide.bind(r.engine);
    r.engine.decide = async (e) => {
      seen.push(e);
      return decide(e);
    };
    await r.line(line({ type: 'user', t: iso(0), user: 'u1' }), 1);
    const rcpt = ['a@x.jp', 'b@x.jp', 'c@x.jp', 'd@x.jp', 'e@x.jp'];
    const res = await r.replay(new LineParser(config).parse(line({ type: 'message', t: iso(1000), id: 'm1', user: 'u1', ip: '126.1.2.3', mailFrom: 'u1@example.jp', rcpt, size: 123, label: 'abuse' }), 2) as never);
    assert.equal(res!.verdict.action, 'accept', 'the message itself goes through with the admitted recipients');
    assert.equal(res!.admitted, 3);
    assert.deepEqual(
      seen.map((e) => (e.kind === 'rcpt' ? `rcpt:${e.recipient}:${e.pendingRecipients}` : e.kind === 'message' ? `message:${e.recipientCount}:${e.size}` : e.kind)),
      ['rcpt:a@x.jp:0', 'rcpt:b@x.jp:1', 'rcpt:c@x.jp:2', 'rcpt:d@x.jp:3', 'rcpt:e@x.jp:3', 'message:3:123'],
    );
    for (const e of seen) {
      assert.equal(e.door, 'replay');
      assert.equal(e.sender, senderId('u1'));
      assert.equal(e.ip, '126.1.2.3');
      assert.equal((e as { label?: unknown }).label, undefined, 'the label never reaches the engine');
    }
    const peek = await r.counters.peek(senderId('u1'), T + 1000);
    assert.deepEqual(peek.windows[0], { messages: 1, recipients: 3 });

    // A message whose every recipient is refused gets the first refusal and no END-OF-MESSAGE.
    seen.length = 0;
    const refused = await r.replay(new LineParser(config).parse(line({ type: 'message', t: iso(2000), id: 'm2', user: 'u1', ip: '126.1.2.3', rcpt: ['f@x.jp', 'g@x.jp'] }), 3) as never);
    assert.equal(refused!.verdict.action, 'defer');
    assert.equal(refused!.verdict.code, 450);
    assert.equal(refused!.verdict.reasons[0]!.rule, 'recipients-per-1m');
    assert.deepEqual(seen.map((e) => e.kind), ['rcpt', 'rcpt']);
    await r.close();
  });

  it('auth lines become auth events (failed logins then a success trip the rule)', async () => {
    const config = configFromObject({ detection: { failedLoginsThenSuccess: { failures: 3, window: '1h' } } });
    const effects: string[] = [];
    const r = new ReplayRunner({ config, emit: (l) => effects.push(l) });
    for (let i = 0; i < 3; i++) await r.line(line({ type: 'auth', t: iso(i * 1000), user: 'u', ip: '45.1.1.1', ok: false }), i + 1);
    await r.line(line({ type: 'auth', t: iso(5000), user: 'u', ip: '45.1.1.1', ok: true }), 4);
    const s = JSON.parse(effects.find((l) => l.includes('"suspend"'))!) as { type: string; user: string; rule: string; t: string };
    assert.equal(s.rule, 'failed-logins-then-success');
    assert.equal(s.user, 'u');
    assert.equal(s.t, iso(5000));
    await r.close();
  });
});

describe('replay: automatic release in virtual time', () => {
  it('a suspension with automatic release is lifted at the first minute boundary after it is due', async () => {
    const config = configFromObject({
      limits: { windows: [{ name: 'minute', seconds: 60, messages: 1, recipients: 100 }] },
      detection: { sustainedBreach: { refusals: 3, window: '10m', autoReleaseAfter: '1h' }, burstSourceIps: { enabled: false }, manySourceIps: { enabled: false } },
    });
    const out: string[] = [];
    const r = new ReplayRunner({ config, emit: (l) => out.push(l) });
    const msg = (n: number, ms: number): string => line({ type: 'message', t: iso(ms), id: `m${n}`, user: 'pusher', ip: '126.1.2.3', rcpt: ['a@x.jp'] });
    for (let i = 0; i < 5; i++) assert.equal(await r.line(msg(i, 10_000 + i * 1000), i + 1), null);
    const suspend = JSON.parse(out.find((l) => l.includes('"type":"suspend"'))!) as { autoReleaseAt: string; t: string };
    assert.equal(suspend.t, iso(13_000));
    assert.equal(suspend.autoReleaseAt, iso(13_000 + 3600_000));
    // Half an hour later: still suspended.
    await r.line(msg(10, 1800_000), 10);
    assert.equal((JSON.parse(out.at(-1)!) as { action: string }).action, 'reject');
    // Two hours later: released at 10:01:00 (first boundary after 10:00:13), then accepted.
    await r.line(msg(11, 7200_000), 11);
    const released = out.map((l) => JSON.parse(l) as { type?: string; kind?: string; t?: string }).find((o) => o.type === 'notice' && o.kind === 'released');
    assert.ok(released, 'a released notice is written');
    assert.equal(released.t, iso(3660_000));
    assert.equal((JSON.parse(out.at(-1)!) as { action: string }).action, 'accept');
    assert.equal(r.summary().suspensions.released, 1);
    await r.close();
  });
});

describe('replay: warm-up and the scoring line', () => {
  const scoringAt = (lines: readonly string[]): number => lines.findIndex((l) => l.includes('"type":"scoring"'));

  it('the scoring line never reaches the engine: the same decisions and effects as without it; the summary counts only what follows', async () => {
    const s = new Scenario({ seed: 12, users: 200, days: 1, start: DEFAULT_START, attackScale: 40, mix: {}, warmupDays: 2 });
    const lines = [...s.userLines()];
    for (let d = -2; d < 1; d++) lines.push(...s.dayLines(d));
    const at = scoringAt(lines);
    assert.ok(at > 200);
    const withMark = await replayFile(write('warm.jsonl', lines));
    const without = await replayFile(write('warm-nomark.jsonl', lines.filter((_, i) => i !== at)));
    assert.equal(withMark.code, 0);
    assert.deepEqual(withMark.out.slice(0, -1), without.out.slice(0, -1), 'byte-identical decisions and effects');
    type L = { abuse: { accounts: number }; legit: { users: number; messages: number }; ownersOfCompromised: { messages: number } };
    type S = { lines: { total: number; message: number }; from: string; messages: { total: number }; suspensions: { total: number }; warmup?: { from: string; to: string; messages: { total: number }; suspensions: { total: number }; labels: L }; labels: L };
    const a = JSON.parse(withMark.out.at(-1)!) as S;
    const b = JSON.parse(without.out.at(-1)!) as S;
    assert.equal(b.warmup, undefined);
    assert.ok(a.warmup);
    assert.equal(a.lines.total, b.lines.total + 1);
    assert.equal(a.lines.message, b.lines.message);
    assert.equal(a.warmup.from, new Date(DEFAULT_START - 2 * 86_400_000).toISOString());
    assert.equal(a.warmup.to, new Date(DEFAULT_START).toISOString());
    assert.equal(a.from, new Date(DEFAULT_START).toISOString());
    assert.equal(a.warmup.messages.total + a.messages.total, b.messages.total);
    assert.equal(a.warmup.suspensions.total + a.suspensions.total, b.suspensions.total);
    // Legitimate-labelled mail: in the warm-up all of it is legitimate users' (owners of
    // accounts compromised later were not compromised yet).
    const legitLabelled = (x: L): number => x.legit.messages + x.ownersOfCompromised.messages;
    assert.equal(a.warmup.labels.ownersOfCompromised.messages, 0);
    assert.equal(legitLabelled(a.warmup.labels) + legitLabelled(a.labels), legitLabelled(b.labels));
    assert.equal(a.warmup.labels.abuse.accounts, 0, 'no attacks in the warm-up');
    assert.equal(a.labels.abuse.accounts, b.labels.abuse.accounts);
    assert.ok(a.labels.legit.users <= b.labels.legit.users && a.labels.legit.users > 0.8 * b.labels.legit.users);
  });

  it('a suspension in the warm-up really happens and carries on: counted in the warm-up, its refusals in the scored period', async () => {
    const config = configFromObject({
      limits: { windows: [{ name: 'minute', seconds: 60, messages: 1, recipients: 100 }] },
      detection: { sustainedBreach: { refusals: 3, window: '10m', autoReleaseAfter: null } },
    });
    const r = new ReplayRunner({ config });
    let n = 0;
    const msg = (ms: number, user: string): string => line({ type: 'message', t: iso(ms), id: `m${++n}`, user, ip: '126.1.2.3', rcpt: ['a@x.jp'], label: 'legit' });
    assert.equal(await r.line(line({ type: 'user', t: iso(0), user: 'pusher', group: 'bulk-no-override' }), 0), null);
    // Warm-up: 'pusher' pushes and is suspended (wrongly: it is legitimate); 'quiet' sends once.
    for (let i = 0; i < 6; i++) assert.equal(await r.line(msg(1000 + i * 100, 'pusher'), n + 1), null);
    assert.equal(await r.line(msg(5000, 'quiet'), n + 1), null);
    assert.equal(await r.line(line({ type: 'scoring', t: iso(60_000) }), n + 1), null);
    // Scored: the suspension is still there; 'quiet' sends nothing any more, 'new' sends once.
    for (let i = 0; i < 2; i++) assert.equal(await r.line(msg(120_000 + i * 60_000, 'pusher'), n + 1), null);
    assert.equal(await r.line(msg(300_000, 'new'), n + 1), null);
    const s = r.summary();
    const w = s.warmup!;
    assert.deepEqual(w.suspensions.byRule, { 'sustained-breach': { total: 1, true: 0, false: 1, unlabelled: 0 } });
    assert.deepEqual(w.labels!.legit.suspensions.map((x) => [x.user, x.rule, x.group]), [['pusher', 'sustained-breach', 'bulk-no-override']]);
    assert.equal(w.labels!.legit.users, 2);
    assert.equal(w.messages.total, 7);
    assert.equal(s.suspensions.total, 0);
    assert.equal(s.messages.total, 3);
    assert.equal(s.messages.reject, 2, 'still suspended: both rejected');
    const l = s.labels!.legit;
    assert.equal(l.users, 2, "'pusher' and 'new' sent in the scored period; 'quiet' did not");
    assert.equal(l.rejected, 2);
    assert.equal(l.suspendedUsers, 0, 'the suspension happened in the warm-up');
    assert.deepEqual(l.byGroup!['bulk-no-override'], { users: 1, messages: 2, deferred: 0, rejected: 2, partial: 0, suspendedUsers: 0 });
    assert.deepEqual(s.labels!.refusalsByRule['suspension/suspended'], { legit: 2, abuse: 0, unlabelled: 0 });
    const text = formatSummary(s);
    assert.match(text, /Warm-up .* not scored/);
    assert.match(text, /pusher \[bulk-no-override\] .* sustained-breach/);
    await r.close();
  });

  it('a scoring line must be in time order, and there is at most one', async () => {
    const config = configFromObject({});
    assert.deepEqual(new LineParser(config).parse(line({ type: 'scoring', t: iso(0), warmupDays: 7 }), 1), { type: 'scoring', line: 1, t: T, label: null, group: null });
    const r = new ReplayRunner({ config });
    assert.equal(await r.line(line({ type: 'user', t: iso(5000), user: 'u' }), 1), null);
    assert.match((await r.line(line({ type: 'scoring', t: iso(4000) }), 2))!.message, /^line 2: time .* is earlier/);
    assert.equal(await r.line(line({ type: 'scoring', t: iso(6000) }), 3), null);
    assert.match((await r.line(line({ type: 'scoring', t: iso(7000) }), 4))!.message, /^line 4: a second scoring line/);
    await r.close();
  });
});
