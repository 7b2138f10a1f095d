import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SenderId } from '../../src/engine/types.ts';
import type { RecordStore, UserSettings } from '../../src/store/record-store.ts';

// The RecordStore conformance suite: SQLite (embedded) and PostgreSQL must behave the same.

export interface RecordStoreHandle {
  readonly store: RecordStore;
  cleanup(): Promise<void>;
}

let n = 0;
const fresh = (label: string): SenderId => `${label}-${process.pid}-${++n}@example.jp` as SenderId;
const T = Date.parse('2026-11-02T00:00:00Z');

export function recordStoreSuite(name: string, open: () => Promise<RecordStoreHandle>, opts: { skip?: string | false } = {}): void {
  describe(`RecordStore conformance: ${name}`, { skip: opts.skip ?? false }, () => {
    let h: RecordStoreHandle;
    let r: RecordStore;
    before(async () => {
      h = await open();
      r = h.store;
    });
    after(async () => {
      await h?.cleanup();
    });

    it('user settings: none, put, read back, replace', async () => {
      const a = fresh('user');
      assert.equal(await r.user(a), null);
      const s: UserSettings = {
        sender: a,
        limits: [{ messages: 5, recipients: 20 }],
        bulkWindows: [{ from: T, until: T + 86400_000, limits: [{ messages: 50, recipients: 200 }], reason: 'newsletter, approved by ops' }],
        createdAt: T,
      };
      await r.putUser(s);
      assert.deepEqual(await r.user(a), s);
      await r.putUser({ ...s, limits: null });
      assert.deepEqual((await r.user(a))?.limits, null);
    });

    it('patchUsers merges fields (null clears, absent keeps) and creates missing users', async () => {
      const a = fresh('patch');
      const b = fresh('patch');
      // Typed loosely: these fields (countermeasures 3 and 5) are newer than the interface's first version.
      const withExtras = { sender: a, limits: [{ messages: 1, recipients: 2 }], bulkWindows: [], createdAt: T, allowAbroad: true, abroadUntil: T + 1000 };
      await r.putUser(withExtras as UserSettings);
      const loose = r as unknown as { patchUsers?: (p: readonly Record<string, unknown>[], now: number) => Promise<void>; user(s: SenderId): Promise<Record<string, unknown> | null> };
      const patchUsers = loose.patchUsers?.bind(r);
      if (!patchUsers) return; // optional member of the interface
      await patchUsers([{ sender: a, abroadUntil: null, spoofingExempt: true }, { sender: b, allowAbroad: true, addresses: [{ address: 'b@example.jp', kind: 'primary' }] }], T + 5);
      const ua = await loose.user(a);
      assert.deepEqual(ua?.limits, [{ messages: 1, recipients: 2 }]);
      assert.equal(ua?.allowAbroad, true);
      assert.equal(ua?.abroadUntil ?? null, null);
      assert.equal(ua?.spoofingExempt, true);
      assert.deepEqual(await r.user(b), { sender: b, limits: null, bulkWindows: [], createdAt: T + 5, allowAbroad: true, addresses: [{ address: 'b@example.jp', kind: 'primary' }] });
    });

    it('one open suspension per sender; release closes it; history keeps both', async () => {
      const a = fresh('susp');
      const s1 = await r.suspend({ sender: a, at: T, by: 'auto', rule: 'sustained-breach', reason: '25 refusals in 10m', figures: { refusals: 25, limit: 20 }, autoReleaseAt: T + 3600_000 });
      assert.ok(s1.id > 0);
      assert.deepEqual({ ...s1, id: 0 }, { id: 0, sender: a, at: T, by: 'auto', rule: 'sustained-breach', reason: '25 refusals in 10m', figures: { refusals: 25, limit: 20 }, autoReleaseAt: T + 3600_000, releasedAt: null, releasedBy: null });
      const again = await r.suspend({ sender: a, at: T + 5, by: 'ops', rule: 'operator', reason: 'x', figures: {}, autoReleaseAt: null });
      assert.equal(again.id, s1.id, 'a second open suspension is not created');
      assert.deepEqual(await r.activeSuspension(a), s1);
      assert.ok((await r.activeSuspensions()).some((x) => x.id === s1.id));
      assert.ok((await r.dueAutoReleases(T + 3600_000)).some((x) => x.id === s1.id));
      assert.ok(!(await r.dueAutoReleases(T + 3599_999)).some((x) => x.id === s1.id));
      const rel = await r.release(a, T + 10, 'auto');
      assert.deepEqual(rel, { ...s1, releasedAt: T + 10, releasedBy: 'auto' });
      assert.equal(await r.release(a, T + 11, 'ops'), null);
      assert.equal(await r.activeSuspension(a), null);
      assert.equal(await r.lastAutoRelease(a), T + 10);
      const s2 = await r.suspend({ sender: a, at: T + 20, by: 'ops', rule: 'operator', reason: 'again', figures: {}, autoReleaseAt: null });
      assert.ok(s2.id > s1.id);
      assert.deepEqual((await r.suspensionHistory(a)).map((x) => x.id), [s2.id, s1.id]);
      assert.equal(await r.lastAutoRelease(fresh('none')), null);
    });

    it('concurrent suspensions of one sender create one record', async () => {
      const a = fresh('race');
      const all = await Promise.all(Array.from({ length: 8 }, (_, i) => r.suspend({ sender: a, at: T + i, by: 'auto', rule: 'r', reason: 'x', figures: {}, autoReleaseAt: null })));
      assert.equal(new Set(all.map((x) => x.id)).size, 1);
      assert.equal((await r.suspensionHistory(a)).length, 1);
    });

    it('audit log: newest first, by sender, since, limit', async () => {
      const a = fresh('audit');
      for (let i = 0; i < 5; i++) await r.audit({ t: T + i * 1000, sender: a, actor: i % 2 ? 'ops' : 'auto', action: 'suspend', detail: `entry ${i}` });
      await r.audit({ t: T + 9000, sender: null, actor: 'ops', action: 'config', detail: 'global' });
      const mine = await r.auditLog({ sender: a, limit: 10 });
      assert.deepEqual(mine.map((e) => e.detail), ['entry 4', 'entry 3', 'entry 2', 'entry 1', 'entry 0']);
      assert.deepEqual({ ...mine[0]!, id: 0 }, { id: 0, t: T + 4000, sender: a, actor: 'auto', action: 'suspend', detail: 'entry 4' });
      assert.deepEqual((await r.auditLog({ sender: a, since: T + 3000, limit: 10 })).map((e) => e.detail), ['entry 4', 'entry 3']);
      assert.equal((await r.auditLog({ sender: a, limit: 2 })).length, 2);
      assert.ok((await r.auditLog({ limit: 50 })).some((e) => e.sender === null && e.detail === 'global'));
    });

    it('notices: newest first, per sender and for everyone', async () => {
      const a = fresh('notice');
      await r.addNotice({ t: T, sender: a, kind: 'limit-reached', data: { window: 60, limit: 5 } });
      await r.addNotice({ t: T + 1, sender: a, kind: 'suspended', data: { rule: 'operator' } });
      const ns = await r.notices(a, 10);
      assert.deepEqual(ns.map((x) => [x.kind, x.data, x.deliveredAt]), [['suspended', { rule: 'operator' }, null], ['limit-reached', { window: 60, limit: 5 }, null]]);
      assert.ok((await r.notices(null, 100)).some((x) => x.sender === a));
    });

    it('decisions are written behind and read back newest first', async () => {
      const a = fresh('dec');
      for (let i = 0; i < 3; i++) r.recordDecision({ t: T + i, sender: a, ip: i ? '126.0.0.1' : null, stage: 'message', action: i === 2 ? 'defer' : 'accept', code: i === 2 ? 450 : null, detail: `d${i}` });
      await r.flush();
      const ds = await r.recentDecisions(a, 2);
      assert.deepEqual(ds, [
        { t: T + 2, sender: a, ip: '126.0.0.1', stage: 'message', action: 'defer', code: 450, detail: 'd2' },
        { t: T + 1, sender: a, ip: '126.0.0.1', stage: 'message', action: 'accept', code: null, detail: 'd1' },
      ]);
    });
  });
}
