import { ConfigError, loadConfig } from '../config/load.ts';
import { configSchema } from '../config/schema.ts';
import { AdminClientError } from './admin-client.ts';

const HELP = `fumidai — stops spam sent through compromised mail accounts (踏み台送信)

Usage: fumidai <command> [options]

Serving
  serve                         policy server + admin API with the embedded state
Support desk (talk to a running "fumidai serve" through its admin API)
  lookup <id>                   counts per window against each limit, source IPs,
                                recent refusals, suspension state and history
  suspend <id> --reason TEXT    suspend sending only (receiving and login still work)
  release <id>                  lift a suspension (operators can always release)
  top --by source-ips|countries|messages|recipients [--window 1h] [--limit 20]
                                sender IDs with the most source IPs / countries / messages / recipients
  audit [--sender ID] [--since 1h] [--limit 50]
                                the audit log
  user <id> [--limits M/R,...] [--bulk-until DATE --bulk-scale N --reason TEXT]
       [--abroad on|off|default] [--travel-until DATE | --travel-days N | --end-travel]
       [--address A]... [--alias A]... [--third-party A]... [--clear-addresses]
       [--spoofing-exempt on|off]
                                sending from abroad (countermeasure 3) and the addresses
                                the user may send as (countermeasure 5)
  identities import <file.jsonl|->
                                bulk import of identities and abroad switches
                                (one JSON line per user; docs/sender-spoofing.md)
                                per-user limits and approved bulk windows
Traffic
  replay <file.jsonl>           run a recorded or simulated scenario through the engine
  simulate --seed N             write a realistic provider scenario (JSON Lines)
Content classification and pools (docs/classifier.md, docs/pools.md)
  classifier train|eval|info|explain
                                train a model on your own mail, measure it, explain a verdict
  consent <id> --version N      record that a user consented to pool routing (notice version N)
Configuration
  config check                  validate the config file and print the result
  config schema                 print the JSON Schema of the config file
  migrate                       create/upgrade the PostgreSQL schema (state.backend redis-postgres;
                                serve does it too; safe when several nodes run it at once)

Common options
  --config FILE                 YAML or JSON config (default: built-in defaults;
                                env FUMIDAI_CONFIG is used when set)
  --json                        machine-readable output (support commands)
  -h, --help                    this text

Docs: README.md, docs/ (configuration, counting semantics, Postfix setup).
`;

async function main(argv: string[]): Promise<number> {
  const command = argv[0];
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(HELP);
    return command === undefined ? 2 : 0;
  }
  // --config is common to all commands; the rest is parsed by each command.
  const rest: string[] = [];
  let configFile: string | null = process.env.FUMIDAI_CONFIG ?? null;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config') configFile = argv[++i] ?? null;
    else if (a.startsWith('--config=')) configFile = a.slice('--config='.length);
    else rest.push(a);
  }
  if (command === 'config' && rest[0] === 'schema') {
    process.stdout.write(`${JSON.stringify(configSchema, null, 2)}\n`);
    return 0;
  }
  const config = loadConfig(configFile);
  switch (command) {
    case 'serve':
      await (await import('./serve.ts')).serve(config);
      return -1;
    case 'config':
      if (rest[0] !== 'check') break;
      process.stdout.write(`${configFile ?? '(defaults)'}: OK\n${JSON.stringify(config, null, 2)}\n`);
      return 0;
    case 'lookup':
    case 'suspend':
    case 'release':
    case 'top':
    case 'audit':
    case 'user':
    case 'identities': {
      const m = await import('./support-commands.ts');
      const run = { lookup: m.lookupCommand, suspend: m.suspendCommand, release: m.releaseCommand, top: m.topCommand, audit: m.auditCommand, user: m.userCommand, identities: m.identitiesCommand }[command];
      await run(config, rest);
      return 0;
    }
    case 'migrate':
      return (await import('../runtime/distributed-state.ts')).migrateCommand(config);
    case 'replay':
      return (await import('./replay-command.ts')).replayCommand(config, rest);
    case 'classifier':
      return (await import('../classify/cli.ts')).classifierCommand(rest);
    case 'consent':
      return (await import('../pools/consent-command.ts')).consentCommand(config, rest);
    case 'simulate':
      return (await import('./simulate-command.ts')).simulateCommand(rest);
  }
  process.stderr.write(`fumidai: unknown command "${command}"\n\n${HELP}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof AdminClientError) {
      process.stderr.write(`fumidai: ${err.message}\n`);
      process.exitCode = 2;
    } else if (err instanceof TypeError && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`fumidai: ${err.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`fumidai: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
