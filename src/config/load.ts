import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse as parseYaml } from 'yaml';
import type { FumidaiConfig } from './config.ts';
import { DEFAULT_CONFIG } from './defaults.ts';
import { parseDuration } from './duration.ts';
import { configSchema } from './schema.ts';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const ajv = new Ajv2020({ allErrors: true, strict: false });
const validateSchema = ajv.compile(configSchema);

/** Keys whose values are durations, as paths below the root (arrays as "*"). */
const DURATION_KEYS = new Set([
  'policy.idleTimeout',
  'milter.idleTimeout',
  'milter.packetTimeout',
  'limits.windows.*.seconds',
  'detection.*.window',
  'detection.*.autoReleaseAfter',
  'detection.*.minHistory',
  'detection.*.tau',
  'detection.*.familiarAfter',
  'suspension.autoReleaseCooldown',
  'source.abroad.maxTravel',
  'source.regions.window',
  'source.regions.noticeInterval',
  'source.regions.steps.*.autoReleaseAfter',
  'source.regions.impossibleTravel.autoReleaseAfter',
  'source.reputation.dnsbl.timeout',
  'source.reputation.dnsbl.cacheTtl',
  'source.reputation.dnsbl.negativeTtl',
  'source.reputation.dnsbl.errorTtl',
]);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function matchesDurationKey(path: readonly string[]): boolean {
  for (const pattern of DURATION_KEYS) {
    const parts = pattern.split('.');
    if (parts.length === path.length && parts.every((p, i) => p === '*' || p === path[i])) return true;
  }
  return false;
}

/** Turns duration strings into seconds, in place on a fresh copy. */
function normaliseDurations(value: unknown, path: string[] = []): unknown {
  if (Array.isArray(value)) return value.map((v, i) => normaliseDurations(v, [...path, String(i)]));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = normaliseDurations(v, [...path, k]);
    return out;
  }
  if (value !== null && matchesDurationKey(path.map((p) => (/^\d+$/.test(p) ? '*' : p)))) {
    const seconds = parseDuration(value);
    if (seconds instanceof Error) throw new ConfigError(`${path.join('.')}: ${seconds.message}`);
    return seconds;
  }
  return value;
}

/** Objects merge key by key; arrays and scalars from `over` replace those of `base`. */
function merge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = merge(base[k], v);
  return out;
}

function checkConsistency(c: FumidaiConfig): void {
  const seen = new Set<number>();
  for (const [i, w] of c.limits.windows.entries()) {
    if (w.seconds < 1) throw new ConfigError(`limits.windows.${i}.seconds: must be at least 1 second`);
    if (seen.has(w.seconds)) throw new ConfigError(`limits.windows.${i}.seconds: two windows have the same length`);
    seen.add(w.seconds);
  }
  if (c.policy.listeners.length === 0) throw new ConfigError('policy.listeners: at least one listener is needed');
  if ((c.milter.senderTokenHeader === null) !== (c.milter.senderTokenSecret === null)) {
    throw new ConfigError('milter.senderTokenHeader and milter.senderTokenSecret: set both or neither');
  }
  if (c.milter.idleTimeout < 301) {
    throw new ConfigError('milter.idleTimeout: must exceed Postfix\'s smtpd_timeout (300s): the milter connection lasts the whole SMTP session');
  }
  if (c.milter.packetTimeout < 1) throw new ConfigError('milter.packetTimeout: must be at least 1 second');
  if (c.policy.idleTimeout < 301) {
    throw new ConfigError('policy.idleTimeout: must exceed Postfix\'s smtpd_policy_service_max_idle (300s), or Postfix sees closed connections');
  }
}

/** Validates an already-parsed config document and merges it over the defaults. */
export function configFromObject(doc: unknown, source = 'config'): FumidaiConfig {
  if (doc === null || doc === undefined) doc = {};
  if (!validateSchema(doc)) {
    const first = validateSchema.errors?.[0];
    const where = first?.instancePath ? first.instancePath.slice(1).replaceAll('/', '.') : '(top level)';
    const extra = first?.params && 'additionalProperty' in first.params ? ` "${String(first.params.additionalProperty)}"` : '';
    throw new ConfigError(`${source}: ${where}: ${first?.message ?? 'invalid'}${extra}`);
  }
  const normalised = normaliseDurations(doc);
  const config = merge(DEFAULT_CONFIG, normalised) as FumidaiConfig;
  checkConsistency(config);
  return config;
}

export function loadConfig(file: string | null): FumidaiConfig {
  if (file === null) return configFromObject({});
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${file}: cannot read: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ConfigError(`${file}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
  return configFromObject(doc, file);
}
