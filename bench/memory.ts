// Memory per tracked sender ID in our in-memory counter store (src/store/memory/),
// for 1,000,000 IDs; target < 300 bytes per active ID.
//
// Runs in its own process with --expose-gc (run.ts starts it; or by hand:
//   node --expose-gc --import tsx bench/memory.ts [--ids 1000000] [--json]).
// Each ID sends one message (2 recipients) from one client IPv4 address, through the same
// store calls the engine makes; a second scenario has each ID send a second message from a
// second address (still inline), and a third scenario a third one (the store then keeps a
// JS map of that ID's addresses).
// Bytes per ID = growth of V8 heap used + external memory (typed arrays live there)
// between two full GCs, divided by the IDs. That includes the store's map of IDs, the
// ID strings themselves and the unused tail of its doubling arrays.
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_CONFIG } from '../src/config/defaults.ts';
import { counterLayout } from '../src/engine/engine.ts';
import { senderId } from '../src/engine/types.ts';
import { MemoryCounterStore } from '../src/store/memory/memory-counter-store.ts';
import { clientIp, userName } from './lib/requests.ts';

export interface MemoryScenario {
  readonly name: string;
  readonly ids: number;
  readonly tracked: number;
  readonly bytesPerId: number;
  /** Whether the < 300 bytes target applies (one or two addresses per ID: home and phone). */
  readonly targeted: boolean;
  readonly heapBytes: number;
  readonly externalBytes: number;
  readonly rssBytes: number;
  readonly seconds: number;
}

export type MemoryResult =
  | { readonly status: 'unavailable'; readonly reason: string }
  | { readonly status: 'measured'; readonly layout: unknown; readonly scenarios: readonly (MemoryScenario & { readonly bytesPerIdRuns: readonly number[] })[] };

function fullGc(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  for (let i = 0; i < 3; i++) gc();
}

async function scenario(name: string, ids: number, ipsPerId: number, targeted = true): Promise<MemoryScenario> {
  const layout = counterLayout(DEFAULT_CONFIG);
  fullGc();
  const m0 = process.memoryUsage();
  const t0 = process.hrtime.bigint();
  const store = new MemoryCounterStore(layout);
  const now = Date.now();
  // The calls the engine makes for one message with two recipients (src/engine/engine.ts):
  // RCPT 1 (tests 1 message + 1 recipient, notes the IP), RCPT 2, then the message stage.
  const limits = DEFAULT_CONFIG.limits.windows.map((w) => ({ messages: w.messages, recipients: w.recipients }));
  for (let k = 0; k < ipsPerId; k++) {
    for (let i = 0; i < ids; i++) {
      const sender = senderId(userName(i));
      const ip = clientIp(i, k);
      const t = now + k * 1000;
      store.observeSync({ sender, now: t, ip, stage: 'rcpt', limits, messages: 1, recipients: 1 });
      store.observeSync({ sender, now: t, ip, stage: 'rcpt', limits, messages: 0, recipients: 2 });
      store.observeSync({ sender, now: t, ip, stage: 'message', limits, messages: 1, recipients: 2 });
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  fullGc();
  const m1 = process.memoryUsage();
  const tracked = await store.size();
  const heap = m1.heapUsed - m0.heapUsed;
  const external = m1.external - m0.external;
  const result: MemoryScenario = {
    name,
    ids,
    tracked,
    bytesPerId: Math.round((heap + external) / ids),
    targeted,
    heapBytes: heap,
    externalBytes: external,
    rssBytes: m1.rss - m0.rss,
    seconds: Math.round(seconds * 100) / 100,
  };
  // Keep the store alive until after the measurement.
  if ((await store.size()) !== tracked) throw new Error('unreachable');
  return result;
}

/** Median (by bytes per ID) of `times` repetitions: heap growth varies a little from run to run. */
async function medianOf(times: number, run: () => Promise<MemoryScenario>): Promise<MemoryScenario & { readonly bytesPerIdRuns: readonly number[] }> {
  const rs: MemoryScenario[] = [];
  for (let i = 0; i < times; i++) rs.push(await run());
  rs.sort((a, b) => a.bytesPerId - b.bytesPerId);
  return { ...rs[Math.floor(rs.length / 2)]!, bytesPerIdRuns: rs.map((r) => r.bytesPerId) };
}

export async function runMemoryBench(ids: number, times = 3): Promise<MemoryResult> {
  return {
    status: 'measured',
    layout: counterLayout(DEFAULT_CONFIG),
    scenarios: [
      await medianOf(times, () => scenario('1 source IP per ID', ids, 1)),
      await medianOf(times, () => scenario('2 source IPs per ID', ids, 2)),
      // Not part of the target: what a third address (a map of the ID's addresses) costs.
      await medianOf(times, () => scenario('3 source IPs per ID', ids, 3, false)),
    ],
  };
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const { values } = parseArgs({ options: { ids: { type: 'string', default: '1000000' }, json: { type: 'boolean', default: false } } });
  runMemoryBench(Number(values.ids)).then(
    (r) => {
      if (values.json) process.stdout.write(JSON.stringify(r) + '\n');
      else if (r.status === 'measured') {
        for (const s of r.scenarios)
          process.stdout.write(
            `${s.name}: ${s.bytesPerId} bytes per ID, median of [${s.bytesPerIdRuns.join(', ')}] (${s.tracked.toLocaleString('en-US')} IDs; heap +${(s.heapBytes / 2 ** 20).toFixed(1)} MiB, ` +
              `external +${(s.externalBytes / 2 ** 20).toFixed(1)} MiB, RSS +${(s.rssBytes / 2 ** 20).toFixed(1)} MiB; ${s.seconds} s)\n`,
          );
      }
    },
    (e: unknown) => {
      process.stderr.write(`memory: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
