import { counterStoreSuite } from './counter-store.suite.ts';
import { recordStoreSuite } from './record-store.suite.ts';
import { MemoryCounterStore } from '../../src/store/memory/memory-counter-store.ts';
import { SqliteRecordStore } from '../../src/store/sqlite/sqlite-record-store.ts';

// The conformance suites against the embedded backend (memory counters, SQLite records).

counterStoreSuite('embedded memory', async (layout) => ({ store: new MemoryCounterStore(layout), cleanup: async () => {} }));
recordStoreSuite('embedded SQLite', async () => {
  const store = new SqliteRecordStore({ file: ':memory:', flushMs: 0 });
  return { store, cleanup: () => store.close() };
});
