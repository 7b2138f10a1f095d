// Plain-text tables for terminal output; East Asian wide characters count double so
// Japanese columns line up.

function width(s: string): number {
  let w = 0;
  for (const ch of s) w += /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/u.test(ch) ? 2 : 1;
  return w;
}

export function table(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => width(r[i] ?? ''))));
  const line = (r: readonly string[]): string =>
    r.map((c, i) => c + ' '.repeat(Math.max(0, widths[i]! - width(c)))).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.slice(1).map(line)].join('\n');
}

export function isoTime(t: number | null | undefined): string {
  return t === null || t === undefined ? '-' : new Date(t).toISOString().replace('.000Z', 'Z');
}
