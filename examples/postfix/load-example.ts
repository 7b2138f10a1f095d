// Reads this folder's example configuration for the tests that run it against a real
// Postfix (test/integration/pools-*.test.ts), so what ships is what is tested:
// main.cf "name = value" lines, the smtp-suspect block of master.cf, the map files.
// Only the folder (/etc/postfix/ → a test folder) and the suspect relay's address
// (127.0.0.1:10026 → a sink) are replaced.

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const EXAMPLE_MAPS = ['fumidai_milter_header_checks', 'fumidai_header_checks', 'fumidai_smtp_header_checks'] as const;

/** main.cf settings of the example, with /etc/postfix/ pointing at `dir`. */
export function exampleMain(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(HERE, 'main.cf'), 'utf8').split('\n')) {
    const m = /^([a-z_0-9]+)\s*=\s*(.*)$/.exec(line);
    if (m !== null) out[m[1]!] = m[2]!.replaceAll('/etc/postfix/', `${dir}/`);
  }
  return out;
}

/** The example's smtp-suspect service (master.cf text between BEGIN and END). */
export function exampleSuspectTransport(dir: string): string {
  const text = readFileSync(join(HERE, 'master.cf'), 'utf8');
  const block = /# BEGIN smtp-suspect\n([\s\S]*?)# END smtp-suspect/.exec(text)?.[1];
  if (block === undefined) throw new Error('examples/postfix/master.cf: no smtp-suspect block');
  return block.replaceAll('/etc/postfix/', `${dir}/`);
}

/** Writes the example's map files into `dir`, the suspect relay replaced by 127.0.0.1:`suspectPort`. */
export function exampleMaps(dir: string, suspectPort: number): void {
  for (const name of EXAMPLE_MAPS) {
    const text = readFileSync(join(HERE, name), 'utf8').replaceAll('[127.0.0.1]:10026', `[127.0.0.1]:${suspectPort}`);
    writeFileSync(join(dir, name), text);
  }
}
