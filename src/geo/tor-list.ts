import { readFileSync } from 'node:fs';
import { ipKey, parseIp, type ParsedIp } from './ip.ts';

// The Tor exit list: a file the operator keeps current (e.g. a cron job copying the Tor
// Project's exit-addresses list); fumidai itself downloads nothing. Accepted formats: one
// address per line (comments with #), or Tor's "ExitAddress 1.2.3.4 2026-11-01 ..." lines.

export class TorExitList {
  private addresses = new Set<string>();

  constructor(readonly file: string) {
    this.reload();
  }

  get size(): number {
    return this.addresses.size;
  }

  /** Re-reads the file; on failure the previous list stays and the error is thrown. */
  reload(): number {
    const next = new Set<string>();
    for (const raw of readFileSync(this.file, 'utf8').split('\n')) {
      const line = raw.replace(/#.*/, '').trim();
      if (line === '') continue;
      const words = line.split(/\s+/);
      const candidate = words[0] === 'ExitAddress' ? words[1] : words.length === 1 ? words[0] : undefined;
      if (candidate === undefined) continue;
      const p = parseIp(candidate);
      if (p !== null) next.add(ipKey(p));
    }
    this.addresses = next;
    return next.size;
  }

  has(ip: ParsedIp): boolean {
    return this.addresses.has(ipKey(ip));
  }
}
