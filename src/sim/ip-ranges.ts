import type { Rng } from './prng.ts';

// Every address the scenario generator uses comes from this one table of well-known
// allocations, so that a later issue can check each simulated connection's country
// against a GeoIP database. Each block was checked (2026-11) against two public
// IP-to-country tables (DB-IP/whois "geo-whois-asn-country" and GeoLite2 country, as
// packaged by ip-location-db) and the RouteViews/DB-IP ASN table: every block below
// maps to its country for at least 99.9 % of its addresses in both, and to the named
// network; the few parts of a block that either table places elsewhere are excluded
// (`exclude`) so that a simulated Japanese home line never looks foreign. docs/replay.md
// lists the check and its figures.
//
// Simplifications: IPv4 only (many Japanese fibre users submit over IPv6 today), and a
// block stands for "somewhere in this network"; hosts are drawn uniformly inside it.

/** How the generator uses a block. */
export type RangeUse =
  | 'jp-fixed' // home and office broadband in Japan
  | 'jp-mobile' // Japanese mobile carriers (CGNAT pools)
  | 'jp-hosting' // Japanese VPS / data centres (proxies of some attacks)
  | 'residential' // broadband abroad: travellers' hotels, bots on home routers and IoT
  | 'hosting'; // data centres abroad: VPS used by spammers

export interface IpRange {
  readonly cidr: string;
  /** ISO 3166-1 alpha-2. */
  readonly country: string;
  readonly network: string;
  readonly asn: number;
  readonly use: RangeUse;
  /** Relative weight among blocks of the same use and country. */
  readonly weight: number;
  /** Parts of the block that the GeoIP tables place in another country: never drawn. */
  readonly exclude?: readonly string[];
}

export const IP_RANGES: readonly IpRange[] = [
  // Japan, fixed broadband (home and office)
  { cidr: '153.128.0.0/9', country: 'JP', network: 'NTT Communications (OCN)', asn: 4713, use: 'jp-fixed', weight: 18, exclude: ['153.254.0.0/16'] },
  { cidr: '180.0.0.0/10', country: 'JP', network: 'NTT Communications (OCN)', asn: 4713, use: 'jp-fixed', weight: 10 },
  { cidr: '114.144.0.0/12', country: 'JP', network: 'NTT Communications (OCN)', asn: 4713, use: 'jp-fixed', weight: 6 },
  { cidr: '126.0.0.0/9', country: 'JP', network: 'SoftBank (SoftBank Hikari / Yahoo! BB)', asn: 17676, use: 'jp-fixed', weight: 12, exclude: ['126.52.128.0/19'] },
  { cidr: '60.64.0.0/11', country: 'JP', network: 'SoftBank', asn: 17676, use: 'jp-fixed', weight: 6 },
  { cidr: '27.80.0.0/12', country: 'JP', network: 'KDDI (au Hikari)', asn: 2516, use: 'jp-fixed', weight: 8 },
  { cidr: '111.96.0.0/12', country: 'JP', network: 'KDDI', asn: 2516, use: 'jp-fixed', weight: 6 },
  { cidr: '182.168.0.0/14', country: 'JP', network: 'Sony Network Communications (So-net)', asn: 2527, use: 'jp-fixed', weight: 8, exclude: ['182.168.1.0/24'] },
  { cidr: '133.200.0.0/13', country: 'JP', network: 'BIGLOBE', asn: 2518, use: 'jp-fixed', weight: 8 },
  { cidr: '110.128.0.0/13', country: 'JP', network: 'JCOM', asn: 9824, use: 'jp-fixed', weight: 8 },
  { cidr: '121.80.0.0/13', country: 'JP', network: 'OPTAGE (eo)', asn: 17511, use: 'jp-fixed', weight: 6 },
  { cidr: '115.36.0.0/14', country: 'JP', network: 'Chubu Telecommunications (commufa)', asn: 18126, use: 'jp-fixed', weight: 4 },
  // Japan, mobile carriers (addresses seen by servers are CGNAT pool addresses)
  { cidr: '1.72.0.0/13', country: 'JP', network: 'NTT DOCOMO', asn: 9605, use: 'jp-mobile', weight: 20 },
  { cidr: '49.96.0.0/12', country: 'JP', network: 'NTT DOCOMO', asn: 9605, use: 'jp-mobile', weight: 20 },
  { cidr: '106.128.0.0/10', country: 'JP', network: 'KDDI (au)', asn: 2516, use: 'jp-mobile', weight: 30 },
  { cidr: '126.0.0.0/9', country: 'JP', network: 'SoftBank (mobile)', asn: 17676, use: 'jp-mobile', weight: 25, exclude: ['126.52.128.0/19'] },
  // Japan, data centres (VPS rented or compromised as proxies)
  { cidr: '160.16.0.0/16', country: 'JP', network: 'SAKURA Internet', asn: 9370, use: 'jp-hosting', weight: 1 },
  { cidr: '163.43.0.0/16', country: 'JP', network: 'SAKURA Internet', asn: 9370, use: 'jp-hosting', weight: 1 },
  { cidr: '160.251.0.0/17', country: 'JP', network: 'GMO Internet (ConoHa)', asn: 7506, use: 'jp-hosting', weight: 1 },
  // Abroad, broadband and mobile
  { cidr: '73.0.0.0/8', country: 'US', network: 'Comcast Cable', asn: 7922, use: 'residential', weight: 2 },
  { cidr: '98.192.0.0/10', country: 'US', network: 'Comcast Cable', asn: 7922, use: 'residential', weight: 1 },
  { cidr: '179.176.0.0/13', country: 'BR', network: 'Telefonica Brasil (Vivo)', asn: 18881, use: 'residential', weight: 1 },
  { cidr: '191.176.0.0/13', country: 'BR', network: 'Claro Brasil', asn: 28573, use: 'residential', weight: 1 },
  { cidr: '14.160.0.0/11', country: 'VN', network: 'VNPT', asn: 45899, use: 'residential', weight: 1 },
  { cidr: '113.160.0.0/11', country: 'VN', network: 'VNPT', asn: 45899, use: 'residential', weight: 1 },
  { cidr: '171.224.0.0/12', country: 'VN', network: 'Viettel', asn: 7552, use: 'residential', weight: 1 },
  { cidr: '117.192.0.0/10', country: 'IN', network: 'BSNL', asn: 9829, use: 'residential', weight: 1 },
  { cidr: '157.32.0.0/12', country: 'IN', network: 'Reliance Jio', asn: 55836, use: 'residential', weight: 1 },
  { cidr: '178.64.0.0/13', country: 'RU', network: 'Rostelecom', asn: 12389, use: 'residential', weight: 1 },
  { cidr: '92.124.0.0/14', country: 'RU', network: 'Rostelecom', asn: 12389, use: 'residential', weight: 1 },
  { cidr: '115.200.0.0/13', country: 'CN', network: 'China Telecom (Chinanet)', asn: 4134, use: 'residential', weight: 1 },
  { cidr: '27.192.0.0/11', country: 'CN', network: 'China Unicom', asn: 4837, use: 'residential', weight: 1 },
  { cidr: '79.192.0.0/10', country: 'DE', network: 'Deutsche Telekom', asn: 3320, use: 'residential', weight: 1 },
  { cidr: '84.128.0.0/10', country: 'DE', network: 'Deutsche Telekom', asn: 3320, use: 'residential', weight: 1 },
  { cidr: '36.72.0.0/13', country: 'ID', network: 'Telkom Indonesia', asn: 7713, use: 'residential', weight: 1 },
  { cidr: '85.96.0.0/12', country: 'TR', network: 'Turk Telekom', asn: 9121, use: 'residential', weight: 1 },
  { cidr: '187.128.0.0/12', country: 'MX', network: 'Telmex (Uninet)', asn: 8151, use: 'residential', weight: 1 },
  { cidr: '14.64.0.0/12', country: 'KR', network: 'Korea Telecom', asn: 4766, use: 'residential', weight: 1 },
  { cidr: '175.192.0.0/10', country: 'KR', network: 'Korea Telecom', asn: 4766, use: 'residential', weight: 1 },
  { cidr: '1.160.0.0/12', country: 'TW', network: 'Chunghwa Telecom (HiNet)', asn: 3462, use: 'residential', weight: 1 },
  { cidr: '36.224.0.0/12', country: 'TW', network: 'Chunghwa Telecom (HiNet)', asn: 3462, use: 'residential', weight: 1 },
  { cidr: '86.128.0.0/10', country: 'GB', network: 'British Telecom', asn: 2856, use: 'residential', weight: 1 },
  { cidr: '176.128.0.0/10', country: 'FR', network: 'Bouygues Telecom', asn: 5410, use: 'residential', weight: 1 },
  { cidr: '79.0.0.0/10', country: 'IT', network: 'Telecom Italia', asn: 3269, use: 'residential', weight: 1 },
  { cidr: '49.144.0.0/13', country: 'PH', network: 'PLDT', asn: 9299, use: 'residential', weight: 1 },
  { cidr: '156.192.0.0/11', country: 'EG', network: 'Telecom Egypt (TE Data)', asn: 8452, use: 'residential', weight: 1 },
  { cidr: '46.118.0.0/15', country: 'UA', network: 'Kyivstar', asn: 15895, use: 'residential', weight: 1 },
  { cidr: '39.32.0.0/11', country: 'PK', network: 'PTCL', asn: 17557, use: 'residential', weight: 1 },
  { cidr: '181.0.0.0/12', country: 'AR', network: 'Telecom Argentina', asn: 7303, use: 'residential', weight: 1 },
  { cidr: '83.0.0.0/11', country: 'PL', network: 'Orange Polska', asn: 5617, use: 'residential', weight: 1 },
  { cidr: '102.88.0.0/13', country: 'NG', network: 'MTN Nigeria', asn: 29465, use: 'residential', weight: 1 },
  { cidr: '5.112.0.0/12', country: 'IR', network: 'Irancell', asn: 44244, use: 'residential', weight: 1 },
  { cidr: '171.96.0.0/13', country: 'TH', network: 'True Internet', asn: 17552, use: 'residential', weight: 1 },
  { cidr: '116.86.0.0/15', country: 'SG', network: 'StarHub', asn: 55430, use: 'residential', weight: 1 },
  { cidr: '112.118.0.0/15', country: 'HK', network: 'PCCW (Netvigator)', asn: 4760, use: 'residential', weight: 1 },
  { cidr: '88.64.0.0/12', country: 'DE', network: 'Vodafone Germany', asn: 3209, use: 'residential', weight: 1 },
  // Abroad, data centres
  { cidr: '3.80.0.0/12', country: 'US', network: 'Amazon AWS (us-east-1)', asn: 14618, use: 'hosting', weight: 1 },
  { cidr: '13.212.0.0/15', country: 'SG', network: 'Amazon AWS (ap-southeast-1)', asn: 16509, use: 'hosting', weight: 1 },
];

/** Parsed block: first address and size, as numbers. */
interface Block {
  readonly range: IpRange;
  readonly base: number;
  readonly size: number;
  readonly exclude: readonly { base: number; size: number }[];
}

function parseCidr(cidr: string): { base: number; size: number } {
  const [ip, len] = cidr.split('/') as [string, string];
  const base = ip.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
  return { base, size: 2 ** (32 - Number(len)) };
}

const BLOCKS: readonly Block[] = IP_RANGES.map((range) => ({ range, ...parseCidr(range.cidr), exclude: (range.exclude ?? []).map(parseCidr) }));

export function ipToText(v: number): string {
  return `${Math.floor(v / 16777216) % 256}.${Math.floor(v / 65536) % 256}.${Math.floor(v / 256) % 256}.${v % 256}`;
}

/** Countries that have blocks of a use. */
export function countriesFor(use: RangeUse): readonly string[] {
  return [...new Set(IP_RANGES.filter((r) => r.use === use).map((r) => r.country))];
}

/** A block of the given use (and country, when given), drawn by weight. */
export function pickBlock(rng: Rng, use: RangeUse, country?: string): IpRange {
  const candidates = BLOCKS.filter((b) => b.range.use === use && (country === undefined || b.range.country === country));
  if (candidates.length === 0) throw new Error(`no address block for ${use}${country ? ` in ${country}` : ''}`);
  return candidates[rng.weighted(candidates.map((b) => b.range.weight))]!.range;
}

function blockOf(range: IpRange): Block {
  const b = BLOCKS.find((x) => x.range === range);
  if (!b) throw new Error(`not a table block: ${range.cidr}`);
  return b;
}

/** A random /24 of a block outside its excluded parts, as the number of its first address. */
function draw24(rng: Rng, b: Block): number {
  for (;;) {
    const p = b.base + Math.floor(rng.float() * (b.size / 256)) * 256;
    if (!b.exclude.some((x) => p + 255 >= x.base && p < x.base + x.size)) return p;
  }
}

/** A host address inside a block (never the .0 or .255 of a /24). */
export function hostIn(rng: Rng, range: IpRange): string {
  return ipToText(draw24(rng, blockOf(range)) + rng.int(1, 254));
}

/** The first address of a random /24 inside a block, as a number (for CGNAT pools). */
export function prefix24In(rng: Rng, range: IpRange): number {
  return draw24(rng, blockOf(range));
}

/** A host inside a given /24 (from prefix24In). */
export function hostInPrefix(rng: Rng, prefix24: number): string {
  return ipToText(prefix24 + rng.int(1, 254));
}

/** The table entry a generated address falls in (for docs and tests). */
export function rangeOf(ip: string): IpRange | null {
  const v = ip.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
  for (const b of BLOCKS) if (v >= b.base && v < b.base + b.size) return b.range;
  return null;
}
