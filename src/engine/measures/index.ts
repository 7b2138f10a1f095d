import type { Measure } from '../measure.ts';
import { baselineJump } from './baseline-jump.ts';
import { content } from './content.ts';
import { failedLoginsThenSuccess } from './failed-logins.ts';
import { pool } from './pool.ts';
import { rateLimit } from './rate-limit.ts';
import { senderSpoofing } from './sender-spoofing.ts';
import { sourceCountry } from './source-country.ts';
import { impossibleTravel, sourceCountries } from './source-regions.ts';
import { sourceReputation } from './source-reputation.ts';
import { burstSourceIps, dailySourceIps, manySourceIps } from './source-ips.ts';
import { suspensionGate } from './suspension-gate.ts';
import { sustainedBreach } from './sustained-breach.ts';

/** Every module the engine runs after the state operation, in reporting order. */
export const MEASURES: readonly Measure[] = [
  suspensionGate,
  rateLimit,
  sustainedBreach,
  burstSourceIps,
  manySourceIps,
  dailySourceIps,
  baselineJump,
  failedLoginsThenSuccess,
  sourceReputation,
  sourceCountry,
  sourceCountries,
  impossibleTravel,
  senderSpoofing,
  content,
  pool,
];
