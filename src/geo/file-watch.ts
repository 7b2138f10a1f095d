import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

// Calls `onChange` after a file was replaced or rewritten. Watches the folder, not the
// file: updates usually arrive as "write a temporary file, rename it over the old one",
// which a watch on the old inode would miss. Events are debounced, so a file written in
// several chunks is reloaded once, after it settled.

export interface FileWatch {
  close(): void;
}

export function watchFile(file: string, onChange: () => void, debounceMs = 300): FileWatch {
  const name = basename(file);
  let timer: NodeJS.Timeout | null = null;
  let watcher: FSWatcher | null = null;
  try {
    watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
      if (changed !== null && changed !== name) return;
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = null;
        onChange();
      }, debounceMs);
      timer.unref();
    });
    watcher.on('error', () => undefined);
  } catch {
    // A folder that cannot be watched: SIGHUP still reloads.
  }
  return {
    close() {
      if (timer !== null) clearTimeout(timer);
      watcher?.close();
    },
  };
}
