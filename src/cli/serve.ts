import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FumidaiConfig } from '../config/config.ts';
import { systemClock } from '../engine/clock.ts';
import { Engine } from '../engine/engine.ts';
import type { Effect } from '../engine/types.ts';
import { startPolicyServer } from '../doors/policy/server.ts';
import { startMilterServer } from '../doors/milter/server.ts';
import { openState } from '../runtime/open-state.ts';
import { Metrics, startMetricsServer, storeOf } from '../web/metrics.ts';
import { startAdminApi } from '../web/admin-api.ts';
import { createNetworkOperatorLookup } from '../geo/network-operator.ts';
import { createSourceResolver } from '../geo/source-resolver.ts';
import { ConfigError } from '../config/load.ts';

// `fumidai serve`: the policy server and the admin API over the embedded state, with
// the periodic jobs (automatic releases, counter saves, forgetting idle IDs).

function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString()} fumidai: ${msg}\n`);
}

function ensureToken(config: FumidaiConfig): string {
  if (config.admin.token !== null) return config.admin.token;
  const file = join(config.dataDir, 'admin.token');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const token = randomBytes(24).toString('base64url');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return token;
}

function describe(e: Effect): string {
  switch (e.type) {
    case 'suspend':
      return `suspended ${e.sender} (${e.rule}: ${e.detail})`;
    case 'notice':
      return `notice ${e.kind} for ${e.sender}`;
    case 'audit':
      return `${e.action} ${e.sender ?? ''}: ${e.detail}`;
  }
}

export async function serve(config: FumidaiConfig): Promise<void> {
  mkdirSync(config.dataDir, { recursive: true });
  const state = await openState(config, { log });
  const metrics = new Metrics();
  state.collect(metrics);
  let storeErrors = 0;
  // Countermeasure 3: country database, lists and DNSBL client (src/geo); SIGHUP reloads the files.
  let source: ReturnType<typeof createSourceResolver>;
  let operators: ReturnType<typeof createNetworkOperatorLookup>;
  try {
    source = createSourceResolver(config, { watch: true, log });
    operators = createNetworkOperatorLookup(config, source);
  } catch (e) {
    // A missing database file or a bad list entry: say which setting, without a stack trace.
    throw new ConfigError((e as Error).message);
  }
  const engine = new Engine({
    config,
    source,
    operators,
    counters: state.counters,
    records: state.records,
    clock: systemClock,
    onEffect: (e) => log(describe(e)),
    onStoreError: (err) => {
      storeErrors++;
      metrics.storeError(storeOf(err, state.backend));
      log(`state store error: ${(err as Error).message}`);
    },
  });
  metrics.instrument(engine);
  const warmed = await state.warm(engine);
  const policy = await startPolicyServer(engine, config, { warn: log });
  const milter = config.milter.listeners.length > 0 ? await startMilterServer(engine, config, { warn: log }) : null;
  const admin = config.admin.listen === null
    ? null
    : await startAdminApi({
        config,
        engine,
        counters: state.counters,
        records: state.records,
        token: ensureToken(config),
        operators,
        health: () => ({ policyConnections: policy.connections(), storeErrors, state: state.health(), ...(source ? { source: source.status() } : {}) }),
      });

  const jobs = [
    setInterval(() => void engine.releaseDue().catch((e: Error) => log(`auto-release failed: ${e.message}`)), 60_000),
  ];
  const stopStateJobs = state.startJobs(log);
  await engine.releaseDue().catch((e: Error) => log(`auto-release failed: ${e.message}`));
  const metricsServer = config.metrics.listen === null
    ? null
    : await startMetricsServer(config.metrics.listen, metrics, async () => ({ ...state.health(), policyConnections: policy.connections(), storeErrors }));

  process.stdout.write(`fumidai: ${state.description}\n`);
  if (source) {
    const db = source.status().database;
    process.stdout.write(`fumidai: country database ${db.file} (${db.type}${db.coordinates ? ', with coordinates' : ', country centroids'})\n`);
  }
  if (operators) {
    const t = operators.table;
    process.stdout.write(`fumidai: ASN table ${t.folder} (${t.ranges} ranges, loaded in ${Math.round(t.loadMs)} ms) for detection.familiarScope "as"\n`);
  }
  for (const a of policy.addresses) process.stdout.write(`fumidai: policy server listening on ${a}\n`);
  for (const a of milter?.addresses ?? []) process.stdout.write(`fumidai: milter listening on ${a}\n`);
  if (admin) process.stdout.write(`fumidai: admin API listening on ${admin.address} (token in ${config.admin.token ? 'the config' : join(config.dataDir, 'admin.token')})\n`);
  if (metricsServer) process.stdout.write(`fumidai: metrics and health on ${metricsServer.address}/metrics and /health\n`);
  if (warmed > 0) process.stdout.write(`fumidai: ${warmed} suspended sender IDs restored\n`);
  process.stdout.write('fumidai: ready\n');

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: shutting down`);
    for (const j of jobs) clearInterval(j);
    stopStateJobs();
    await metricsServer?.close();
    await policy.close();
    await milter?.close();
    await admin?.close();
    await state.close();
    source?.close();
    process.exit(0);
  };
  process.on('SIGHUP', () => {
    log('SIGHUP: reloading the country database and lists');
    source?.reload();
  });
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
