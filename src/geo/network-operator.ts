import type { FumidaiConfig } from '../config/config.ts';
import type { NetworkOperatorLookup } from '../engine/types.ts';
import { AsnDatabase, bundledAsnFolder } from './asn-db.ts';
import { parseIp } from './ip.ts';
import type { GeoSourceResolver } from './source-resolver.ts';

// The AS numbers the detection rules' familiar-source exception compares
// (detection.familiarScope "as"). Countermeasure 1 needs them even when countermeasure 3
// is off, so the table is loaded here when the source resolver has not loaded it already.

/** Null with familiarScope "network"; throws with a message naming the setting when the table cannot be read. */
export function createNetworkOperatorLookup(config: FumidaiConfig, source: GeoSourceResolver | null): AsnOperatorLookup | null {
  if (config.detection.familiarScope !== 'as') return null;
  let db = source?.asn ?? null;
  if (db === null) {
    const folder = config.source.reputation.asnDatabase;
    try {
      db = new AsnDatabase(folder ?? bundledAsnFolder());
    } catch (e) {
      throw new Error(`${folder === null ? 'detection.familiarScope' : 'source.reputation.asnDatabase'}: ${(e as Error).message}`);
    }
  }
  return new AsnOperatorLookup(db);
}

export class AsnOperatorLookup implements NetworkOperatorLookup {
  constructor(readonly table: AsnDatabase) {}

  asnOf(ip: string): number | null {
    const p = parseIp(ip);
    return p === null ? null : this.table.lookup(p);
  }
}
