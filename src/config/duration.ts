// Durations in config are written the way operators write them ("90s", "10m", "1h", "7d")
// or as a plain number of seconds.

const UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

export const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?[smhdw]$';

/** Seconds in a duration, or an Error naming what is wrong. */
export function parseDuration(value: unknown): number | Error {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  if (typeof value !== 'string') return new Error('expected a duration such as "10m" or a number of seconds');
  const m = /^([0-9]+(?:\.[0-9]+)?)([smhdw])$/.exec(value.trim());
  if (!m) return new Error(`"${value}" is not a duration; use a number and one of s, m, h, d, w (e.g. "10m")`);
  return Number(m[1]) * (UNITS[m[2]!] ?? 1);
}

/** Shortest readable form of a number of seconds: 3600 → "1h". */
export function formatDuration(seconds: number): string {
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60]] as const) {
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}
