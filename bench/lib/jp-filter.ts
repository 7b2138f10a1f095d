// "Is this a Japanese address?" according to fumidai's own bundled country database, so
// the workload's client addresses are all domestic for the server under test (see
// clientIp in requests.ts). Loaded lazily; if src/geo is unavailable the workload runs
// unfiltered and the caller says so.
import { setAddressFilter } from './requests.ts';

export async function installJapanFilter(): Promise<string | null> {
  try {
    const geo = (await import('../../src/geo/country-db.ts')) as typeof import('../../src/geo/country-db.ts');
    const ipmod = (await import('../../src/geo/ip.ts')) as typeof import('../../src/geo/ip.ts');
    const db = new geo.CountryDatabase(geo.bundledCountryDatabase(), 'ZZ');
    setAddressFilter((ip) => {
      const p = ipmod.parseIp(ip);
      return p !== null && db.lookup(p).country === 'JP';
    });
    return null;
  } catch (e) {
    setAddressFilter(null);
    return `client addresses not checked against the country database: ${(e as Error).message.split('\n')[0]}`;
  }
}
