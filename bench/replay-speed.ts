// Replay speed: messages per second (wall and CPU) through the real engine, on a
// simulated scenario, without raw bodies. Usage:
//   node --import tsx bench/replay-speed.ts [--users 20000] [--days 7] [--seed 5] [--attack-scale 1] [--config FILE]
// The scenario is generated in memory first (not timed); then its lines are fed to the
// replay runner exactly as `fumidai replay --summary-only` does.
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/load.ts';
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
const lines = [...scenario.userLines()];
for (let d = 0; d < days; d++) for (const l of scenario.dayLines(d)) lines.push(l);

const runner = new ReplayRunner({ config: loadConfig(values.config ?? null) });
const t0 = performance.now();
const c0 = process.cpuUsage();
for (let i = 0; i < lines.length; i++) {
  const err = await runner.line(lines[i]!, i + 1);
  if (err !== null) throw err;
}
const secs = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(c0);
const cpuSecs = (cpu.user + cpu.system) / 1e6;
const s = runner.summary();
await runner.close();
const result = {
  users,
  days,
  seed,
  attackScale,
  lines: lines.length,
  messages: s.messages.total,
  recipients: s.recipients.total,
  seconds: Number(secs.toFixed(2)),
  messagesPerSecond: Math.round(s.messages.total / secs),
  messagesPerCpuSecond: Math.round(s.messages.total / cpuSecs),
  recipientsPerSecond: Math.round(s.recipients.total / secs),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
