import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exampleMain, exampleMaps, exampleSuspectTransport } from '../../../examples/postfix/load-example.ts';
import { startSmtpSink, type SmtpSink } from '../../support/smtp-sink.ts';
import { startPostfix, type PostfixInstance } from './harness.ts';

// A real Postfix configured with examples/postfix/ as it ships, and two sinks: the clean
// one stands in for the normal relay, the suspect one for the relay that owns the suspect
// IPs. Shared by the pool suites (in-process engine, and `fumidai serve`).

export interface PoolRoutes {
  readonly pf: PostfixInstance;
  readonly clean: SmtpSink;
  readonly suspect: SmtpSink;
  /** The folder of the example maps (postconf shows their paths). */
  readonly mapDir: string;
  close(): Promise<void>;
}

/** `policy` and `milter` are Postfix endpoints such as "inet:127.0.0.1:10040". */
export async function startPoolRoutes(policy: string, milter: string): Promise<PoolRoutes> {
  const clean = await startSmtpSink({ hostname: 'clean-sink.fumidai-test.invalid' });
  const suspect = await startSmtpSink({ hostname: 'suspect-sink.fumidai-test.invalid' });
  const mapDir = mkdtempSync(join(tmpdir(), 'fumidai-pool-maps-'));
  const close = async (pf?: PostfixInstance): Promise<void> => {
    await pf?.stop();
    await clean.close();
    await suspect.close();
    rmSync(mapDir, { recursive: true, force: true });
  };
  try {
    chmodSync(mapDir, 0o755);
    exampleMaps(mapDir, suspect.port);
    const pf = await startPostfix({ policy, milters: milter, nextHop: clean, extraMain: exampleMain(mapDir), extraMaster: exampleSuspectTransport(mapDir) });
    return { pf, clean, suspect, mapDir, close: () => close(pf) };
  } catch (e) {
    await close();
    throw e;
  }
}
