// `npm run bench`: every benchmark of the project, one after another, each in its own
// process so that none warms or disturbs another's heap:
//   run.ts           policy server vs the do-nothing ceiling, policyd-rate-limit, postfwd;
//                    memory per tracked sender ID (issue: core engine)
//   replay-speed.ts  replay messages/s (core engine)
//   cluster.ts       Redis + PostgreSQL backend, one node vs three, round trips (distributed state)
//   classifier.ts    our classifier vs Rspamd's Bayes on the holdout, throughput (content)
//   milter-cost.ts   Postfix throughput without a milter, with ours, with Rspamd's (milter)
// Pass names to run only some: `npm run bench -- run cluster`; options after the names go
// to each named benchmark (`npm run bench -- run --repeat 1`). Results land in
// bench/results/ and are summarised in docs/performance.md.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ALL = ['run', 'replay-speed', 'cluster', 'classifier', 'milter-cost'] as const;

const args = process.argv.slice(2);
const firstOption = args.findIndex((a) => a.startsWith('-'));
const wanted = firstOption < 0 ? args : args.slice(0, firstOption);
const options = firstOption < 0 ? [] : args.slice(firstOption);
if (options.length > 0 && wanted.length === 0) {
  process.stderr.write('bench: name the benchmark the options are for, e.g. npm run bench -- run --repeat 1\n');
  process.exit(2);
}
for (const w of wanted) {
  if (!(ALL as readonly string[]).includes(w)) {
    process.stderr.write(`bench: unknown benchmark "${w}"; known: ${ALL.join(', ')}\n`);
    process.exit(2);
  }
}
const failed: string[] = [];
for (const name of wanted.length > 0 ? wanted : ALL) {
  process.stdout.write(`\n=== bench/${name}.ts ===\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(HERE, `${name}.ts`), ...options], { stdio: 'inherit' });
  if (r.status !== 0) failed.push(`${name} (exit ${r.status ?? r.signal})`);
}
if (failed.length > 0) {
  process.stderr.write(`\nbench: failed: ${failed.join(', ')}\n`);
  process.exit(1);
}
