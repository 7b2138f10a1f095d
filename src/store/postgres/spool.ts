import { appendFileSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

// A durable local spool for record writes made while PostgreSQL is unreachable: one
// JSON object per line, appended and fsync'ed before the write is acknowledged (so an
// automatic suspension survives kill -9 of the node and an outage of the database).
// Draining renames the file first (new writes go to a fresh file), replays the renamed
// file in order, and deletes it only when every entry is in PostgreSQL. Entries carry
// an id that the tables store in a UNIQUE column, so a replay interrupted by a crash
// and repeated never duplicates anything.

export type SpoolEntry =
  | { readonly op: 'suspend'; readonly id: string; readonly row: Readonly<Record<string, unknown>> }
  | { readonly op: 'audit'; readonly id: string; readonly row: Readonly<Record<string, unknown>> }
  | { readonly op: 'notice'; readonly id: string; readonly row: Readonly<Record<string, unknown>> };

const ACTIVE = 'records.jsonl';

export class Spool {
  private readonly dir: string;
  private count: number;

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true });
    this.count = this.files().reduce((n, f) => n + this.read(f).length, 0);
  }

  /** Entries not yet in PostgreSQL. */
  size(): number {
    return this.count;
  }

  append(entry: SpoolEntry): void {
    const fd = openSync(join(this.dir, ACTIVE), 'a');
    try {
      writeSync(fd, `${JSON.stringify(entry)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.count++;
  }

  /** Files to replay, oldest first (interrupted drains before the active file). */
  private files(): string[] {
    const draining = readdirSync(this.dir).filter((f) => f.startsWith('draining-')).sort();
    return existsSync(join(this.dir, ACTIVE)) ? [...draining, ACTIVE] : draining;
  }

  private read(file: string): SpoolEntry[] {
    const text = readFileSync(join(this.dir, file), 'utf8');
    const out: SpoolEntry[] = [];
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        out.push(JSON.parse(line) as SpoolEntry);
      } catch {
        // A torn last line (crash mid-append, before fsync returned): the write was never acknowledged.
      }
    }
    return out;
  }

  /**
   * Replays every spooled entry through `apply`, oldest first. Stops at the first
   * failure (the rest stays spooled, in order). Entries `apply` rejects as bad data are
   * moved to rejected.jsonl so one cannot block the spool forever.
   */
  async drain(apply: (e: SpoolEntry) => Promise<void>, isDataError: (e: unknown) => boolean): Promise<number> {
    if (existsSync(join(this.dir, ACTIVE))) renameSync(join(this.dir, ACTIVE), join(this.dir, `draining-${Date.now().toString().padStart(15, '0')}.jsonl`));
    let done = 0;
    try {
      for (const file of this.files().filter((f) => f !== ACTIVE)) {
        for (const entry of this.read(file)) {
          try {
            await apply(entry);
          } catch (e) {
            if (!isDataError(e)) throw e;
            appendFileSync(join(this.dir, 'rejected.jsonl'), `${JSON.stringify({ entry, error: (e as Error).message })}\n`);
          }
          done++;
        }
        unlinkSync(join(this.dir, file));
      }
    } finally {
      this.count = this.files().reduce((n, f) => n + this.read(f).length, 0);
    }
    return done;
  }
}
