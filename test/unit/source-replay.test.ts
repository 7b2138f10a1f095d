import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { configFromObject } from '../../src/config/load.ts';
import { ReplayRunner } from '../../src/doors/replay/runner.ts';
import { addressesIn } from './source-fixture.ts';

// `fumidai replay` honours the scenario's `allowAbroad`, travel exceptions (`abroadUntil`)
// and `addresses` in user lines, through the same engine modules as live traffic.

describe('replay: connection source and spoofing fields of user lines', () => {
  it('allowAbroad, abroadUntil and addresses reach the user settings', async () => {
    const out: Record<string, unknown>[] = [];
    const runner = new ReplayRunner({ config: configFromObject({}), emit: (l) => out.push(JSON.parse(l) as Record<string, unknown>) });
    after(() => runner.close());
    const [jp] = addressesIn('JP', 1) as [string];
    const [us1, us2, us3] = addressesIn('US', 3) as [string, string, string];
    const lines = [
      { type: 'user', t: '2026-11-02T00:00:00Z', user: 'stay', addresses: ['stay@example.jp'], allowAbroad: false },
      { type: 'user', t: '2026-11-02T00:00:00Z', user: 'trip', addresses: ['trip@example.jp', 'trip@shop.example'], allowAbroad: false, abroadUntil: '2026-11-05T00:00:00+09:00' },
      { type: 'user', t: '2026-11-02T00:00:00Z', user: 'free', addresses: ['free@example.jp'], allowAbroad: true },
      { type: 'message', t: '2026-11-02T01:00:00Z', id: 'm1', user: 'stay', ip: us1, mailFrom: 'stay@example.jp', rcpt: ['a@example.com'] },
      { type: 'message', t: '2026-11-02T02:00:00Z', id: 'm2', user: 'stay', ip: jp, mailFrom: 'stay@example.jp', rcpt: ['a@example.com'] },
      { type: 'message', t: '2026-11-03T01:00:00Z', id: 'm3', user: 'trip', ip: us2, mailFrom: 'trip@shop.example', rcpt: ['a@example.com'] },
      { type: 'message', t: '2026-11-06T01:00:00Z', id: 'm4', user: 'trip', ip: us2, mailFrom: 'trip@example.jp', rcpt: ['a@example.com'] },
      { type: 'message', t: '2026-11-06T01:00:00Z', id: 'm5', user: 'free', ip: us3, mailFrom: 'boss@bank.example', rcpt: ['a@example.com'] },
      { type: 'message', t: '2026-11-06T02:00:00Z', id: 'm6', user: 'free', ip: us3, mailFrom: 'free@example.jp', headerFrom: 'Bank <info@bank.example>', rcpt: ['a@example.com'] },
    ];
    for (const [i, l] of lines.entries()) assert.equal(await runner.line(JSON.stringify(l), i + 1), null);
    const verdict = (id: string) => out.find((o) => o.id === id) as { action: string; reasons: { rule: string }[] };
    assert.equal(verdict('m1').action, 'reject');
    assert.equal(verdict('m1').reasons[0]!.rule, 'abroad-off');
    assert.equal(verdict('m2').action, 'accept');
    assert.equal(verdict('m3').action, 'accept', 'travel exception, and an address from the user line');
    assert.equal(verdict('m4').action, 'reject', 'the travel exception ended');
    assert.equal(verdict('m5').action, 'reject');
    assert.ok(verdict('m5').reasons.some((r) => r.rule === 'envelope-from-mismatch'));
    assert.equal(verdict('m6').action, 'reject');
    assert.ok(verdict('m6').reasons.some((r) => r.rule === 'header-from-mismatch'));
    assert.ok(out.some((o) => o.type === 'notice' && o.kind === 'abroad-attempt' && o.user === 'stay'));
  });

  it('a bad abroadUntil is reported with its line', async () => {
    const runner = new ReplayRunner({ config: configFromObject({}) });
    after(() => runner.close());
    const err = await runner.line('{"type":"user","t":"2026-11-02T00:00:00Z","user":"x","abroadUntil":"next week"}', 7);
    assert.match(String(err?.message), /^line 7: abroadUntil: /);
  });
});
