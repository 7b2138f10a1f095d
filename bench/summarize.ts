// Merges several bench/results/*.json files (each from `npm run bench`) into one table:
// on a shared machine, rounds can be collected in quiet moments and summarized later.
//   node --import tsx bench/summarize.ts bench/results/A.json bench/results/B.json [--out merged.json]
// Runs keep their own quiet/disturbed flag; medians are recomputed over all files.
// The newest memory result and limit checks among the files are kept.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { markdown, summarize, targets, type ResultFile, type RunRecord } from './lib/report.ts';

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { out: { type: 'string' } } });
  if (positionals.length === 0) throw new Error('usage: summarize.ts <result.json>... [--out merged.json]');
  const files = positionals.map((f) => ({ f, r: JSON.parse(readFileSync(f, 'utf8')) as ResultFile }));
  files.sort((a, b) => a.r.startedAt.localeCompare(b.r.startedAt));
  const newest = files[files.length - 1]!.r;
  const first = files[0]!.r;
  // Rounds are renumbered so that each file's rounds stay distinct.
  let offset = 0;
  const runs: RunRecord[] = [];
  for (const { r } of files) {
    const maxRep = Math.max(0, ...r.runs.map((x) => x.repeat));
    for (const x of r.runs) runs.push({ ...x, repeat: x.repeat + offset });
    offset += maxRep;
  }
  const servers = { ...Object.assign({}, ...files.map(({ r }) => r.servers)) } as ResultFile['servers'];
  const names = Object.keys(servers);
  const conns = [...new Set(runs.map((x) => x.connections))].sort((a, b) => a - b);
  const rows = summarize(runs, names, conns);
  const differs = files.some(({ r }) => JSON.stringify(r.options) !== JSON.stringify(first.options) || JSON.stringify(r.load) !== JSON.stringify(first.load));
  const merged: ResultFile = {
    ...newest,
    startedAt: first.startedAt,
    finishedAt: newest.finishedAt,
    argv: [],
    summary: rows,
    targets: targets(rows, conns, Object.fromEntries(names.map((n) => [n, servers[n]!.role]))),
    failures: files.flatMap(({ r }) => r.failures),
    skipped: {},
    memory: [...files].reverse().find(({ r }) => r.memory !== null)?.r.memory ?? null,
    sanity: [...files].reverse().find(({ r }) => Object.keys(r.sanity).length > 0)?.r.sanity ?? {},
    servers,
    runs,
    sources: files.map(({ f }) => f),
  };
  process.stdout.write(markdown(merged) + (differs ? '\nNote: the merged files were run with different options; the header shows the newest file\'s.\n' : '') + '\n');
  if (values.out) writeFileSync(values.out, JSON.stringify(merged, null, 2) + '\n');
}

main();
