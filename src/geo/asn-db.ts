import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ParsedIp } from './ip.ts';

// Autonomous system of an address, for the operator's allow/deny lists by ASN. Data:
// the npm package @ip-location-db/asn (RouteViews + RIR + DB-IP "IP to ASN Lite", each
// CC BY 4.0: attribution to routeviews.org, nro.net and db-ip.com in
// docs/connection-source.md). Its "-num" CSV files (start,end,asn,org with inclusive
// numeric ranges) are loaded into sorted typed arrays; a lookup is a binary search.
// IPv6 ranges are kept at /64 precision (the upper 64 bits), finer than any routed prefix.

const require = createRequire(import.meta.url);

export function bundledAsnFolder(): string {
  return dirname(require.resolve('@ip-location-db/asn/package.json'));
}

export interface AsnInfo {
  readonly asn: number;
  readonly org: string;
}

/** Splits one CSV line of the form a,b,c,"d, e" into fields. */
function csvFields(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let j = i + 1;
      let field = '';
      while (j < line.length) {
        if (line[j] === '"' && line[j + 1] === '"') {
          field += '"';
          j += 2;
        } else if (line[j] === '"') {
          break;
        } else {
          field += line[j++];
        }
      }
      out.push(field);
      i = j + 2;
    } else {
      const comma = line.indexOf(',', i);
      const end = comma < 0 ? line.length : comma;
      out.push(line.slice(i, end));
      i = end + 1;
    }
  }
  return out;
}

export class AsnDatabase {
  private v4Start = new Uint32Array(0);
  private v4End = new Uint32Array(0);
  private v4Asn = new Uint32Array(0);
  private v6Start = new BigUint64Array(0);
  private v6End = new BigUint64Array(0);
  private v6Asn = new Uint32Array(0);
  private readonly orgs = new Map<number, string>();
  readonly ranges: number;
  readonly loadMs: number;

  constructor(readonly folder: string) {
    const t0 = performance.now();
    const v4 = join(folder, 'asn-ipv4-num.csv');
    const v6 = join(folder, 'asn-ipv6-num.csv');
    if (!existsSync(v4)) throw new Error(`${folder}: no asn-ipv4-num.csv (expected the ip-location-db ASN format)`);
    this.loadV4(readFileSync(v4, 'utf8'));
    if (existsSync(v6)) this.loadV6(readFileSync(v6, 'utf8'));
    this.ranges = this.v4Start.length + this.v6Start.length;
    this.loadMs = performance.now() - t0;
  }

  private org(asn: number, name: string | undefined): void {
    // A copy: a slice of the file's text would keep all 32 MB of it alive for the names.
    if (name !== undefined && name !== '' && !this.orgs.has(asn)) this.orgs.set(asn, Buffer.from(name, 'utf8').toString('utf8'));
  }

  /**
   * Calls `range` for each "start,end,asn[,org...]" line of an ip-location-db ASN file
   * (start and end as decimal text), records organisation names, and returns the count.
   */
  private eachRange(lines: readonly string[], range: (n: number, start: string, end: string, asn: number) => void): number {
    let n = 0;
    for (const line of lines) {
      if (line === '') continue;
      const c1 = line.indexOf(',');
      const c2 = line.indexOf(',', c1 + 1);
      const c3 = line.indexOf(',', c2 + 1);
      const asn = Number(line.slice(c2 + 1, c3 < 0 ? line.length : c3));
      range(n, line.slice(0, c1), line.slice(c1 + 1, c2), asn);
      if (c3 >= 0 && !this.orgs.has(asn)) this.org(asn, csvFields(line.slice(c3 + 1))[0]);
      n++;
    }
    return n;
  }

  private loadV4(text: string): void {
    const lines = text.split('\n');
    const s = new Uint32Array(lines.length);
    const e = new Uint32Array(lines.length);
    const a = new Uint32Array(lines.length);
    const n = this.eachRange(lines, (i, start, end, asn) => {
      s[i] = Number(start);
      e[i] = Number(end);
      a[i] = asn;
    });
    this.v4Start = s.slice(0, n);
    this.v4End = e.slice(0, n);
    this.v4Asn = a.slice(0, n);
    this.checkSorted(this.v4Start);
  }

  private loadV6(text: string): void {
    const lines = text.split('\n');
    const s = new BigUint64Array(lines.length);
    const e = new BigUint64Array(lines.length);
    const a = new Uint32Array(lines.length);
    // Only the top 64 bits: allocations are /64 or shorter.
    const n = this.eachRange(lines, (i, start, end, asn) => {
      s[i] = BigInt(start) >> 64n;
      e[i] = BigInt(end) >> 64n;
      a[i] = asn;
    });
    this.v6Start = s.slice(0, n);
    this.v6End = e.slice(0, n);
    this.v6Asn = a.slice(0, n);
  }

  private checkSorted(a: Uint32Array): void {
    for (let i = 1; i < a.length; i++) if (a[i]! < a[i - 1]!) throw new Error(`${this.folder}: ranges are not sorted`);
  }

  /** ASN of an address, or null when no range holds it. */
  lookup(ip: ParsedIp): number | null {
    if (ip.v === 4) {
      const i = lastAtOrBelow(this.v4Start, ip.n);
      return i >= 0 && ip.n <= this.v4End[i]! ? this.v4Asn[i]! : null;
    }
    const hi = ip.n >> 64n;
    let lo = 0;
    let up = this.v6Start.length - 1;
    let found = -1;
    while (lo <= up) {
      const mid = (lo + up) >> 1;
      if (this.v6Start[mid]! <= hi) {
        found = mid;
        lo = mid + 1;
      } else {
        up = mid - 1;
      }
    }
    return found >= 0 && hi <= this.v6End[found]! ? this.v6Asn[found]! : null;
  }

  orgOf(asn: number): string | null {
    return this.orgs.get(asn) ?? null;
  }
}

function lastAtOrBelow(a: Uint32Array, v: number): number {
  let lo = 0;
  let hi = a.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! <= v) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}
