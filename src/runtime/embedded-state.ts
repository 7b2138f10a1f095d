import { join } from 'node:path';
import { serialize, deserialize } from 'node:v8';
import type { FumidaiConfig } from '../config/config.ts';
import { counterLayout } from '../engine/engine.ts';
import { MemoryCounterStore, type CounterSnapshotData } from '../store/memory/memory-counter-store.ts';
import { SqliteRecordStore } from '../store/sqlite/sqlite-record-store.ts';

// The embedded backend: hot counters in memory, records in one SQLite file in dataDir.
// Counters are saved into the same file periodically and at shutdown, so a restart
// keeps the windows (a crash loses at most one save interval of counts; suspensions
// and audit entries are never lost, they are written synchronously).

const SNAPSHOT_KEY = 'counters';

export interface EmbeddedState {
  readonly counters: MemoryCounterStore;
  readonly records: SqliteRecordStore;
  /** Saves the counters into the SQLite file. */
  saveCounters(): void;
  close(): Promise<void>;
}

export function openEmbeddedState(config: FumidaiConfig, opts: { file?: string } = {}): EmbeddedState {
  const file = opts.file ?? join(config.dataDir, 'fumidai.sqlite');
  const records = new SqliteRecordStore({ file });
  const counters = new MemoryCounterStore(counterLayout(config));
  const saved = records.getBlob(SNAPSHOT_KEY);
  if (saved !== null) counters.importState(deserialize(saved) as CounterSnapshotData);
  const saveCounters = (): void => records.putBlob(SNAPSHOT_KEY, serialize(counters.exportState()));
  return {
    counters,
    records,
    saveCounters,
    async close() {
      saveCounters();
      await records.close();
    },
  };
}
