// Replay speed: messages per second (wall and CPU) through the real engine, on a
// simulated scenario, without raw bodies. Usage:
//   node --import tsx bench/replay-speed.ts [--users 20000] [--days 7] [--seed 5] [--attack-scale 1] [--config FILE]
// The scenario is written to a temporary file first (not timed); then the file is read
// and fed to the replay runner exactly as `fumidai replay --summary-only` does. (Holding
// a large scenario's millions of lines in memory instead made every major garbage
// collection walk them: 15,000 instead of 23,000 messages/s on the 100,000-user week.)
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/load.ts';
import { readLineBatches } from '../src/doors/replay/reader.ts';
import { ReplayRunner } from '../src/doors/replay/runner.ts';
import { DEFAULT_START, Scenario } from '../src/sim/scenario.ts';

const { values } = parseArgs({
  options: { users: { type: 'string' }, days: { type: 'string' }, seed: { type: 'string' }, 'attack-scale': { type: 'string' }, config: { type: 'string' } },
});
const users = Number(values.users ?? 20_000);
const days = Number(values.days ?? 7);
const seed = Number(values.seed ?? 5);
const attackScale = Number(values['attack-scale'] ?? 1);

const scenario = new Scenario({ seed, users, days, start: DEFAULT_START, attackScale, mix: {} });
const dir = await mkdtemp(join(tmpdir(), 'fumidai-replay-speed-'));
const file = join(dir, 'scenario.jsonl');
const out = createWriteStream(file);
let lineCount = 0;
const write = async (l: string): Promise<void> => {
  lineCount++;
  if (!out.write(`${l}\n`)) await once(out, 'drain');
};
for (const l of scenario.userLines()) await write(l);
for (let d = 0; d < days; d++) for (const l of scenario.dayLines(d)) await write(l);
out.end();
await once(out, 'finish');

const runner = new ReplayRunner({ config: loadConfig(values.config ?? null) });
const t0 = performance.now();
const c0 = process.cpuUsage();
let lineNo = 0;
for await (const batch of readLineBatches(file)) {
  for (const text of batch) {
    const err = await runner.line(text, ++lineNo);
    if (err !== null) throw err;
  }
}
const secs = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(c0);
const cpuSecs = (cpu.user + cpu.system) / 1e6;
const s = runner.summary();
await runner.close();
await rm(dir, { recursive: true, force: true });
const result = {
  users,
  days,
  seed,
  attackScale,
  lines: lineCount,
  messages: s.messages.total,
  recipients: s.recipients.total,
  seconds: Number(secs.toFixed(2)),
  messagesPerSecond: Math.round(s.messages.total / secs),
  messagesPerCpuSecond: Math.round(s.messages.total / cpuSecs),
  recipientsPerSecond: Math.round(s.recipients.total / secs),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
