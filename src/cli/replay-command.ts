import { createWriteStream, openSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Writable } from 'node:stream';
import type { FumidaiConfig } from '../config/config.ts';
import { readLineBatches } from '../doors/replay/reader.ts';
import { formatSummary } from '../doors/replay/report.ts';
import { ReplayRunner } from '../doors/replay/runner.ts';

const USAGE = `usage: fumidai replay <file.jsonl|-> [--output FILE] [--summary-only] [--json-summary] [--skip-invalid] [--quiet]

  --output FILE     write the JSON lines there instead of standard output
  --summary-only    write only the summary line (no per-message or side-effect lines)
  --json-summary    do not print the readable summary table on standard error
  --skip-invalid    skip lines that cannot be replayed (with a warning) instead of stopping
  --quiet           no progress or timing on standard error
Exit status: 0 done, 2 bad arguments or a bad input line (the line number is named).
`;

const MAX_WARNINGS = 20;
const PROGRESS_MS = 3000;

/** Buffers output lines and writes them in large chunks, honouring back-pressure. */
class ChunkWriter {
  private parts: string[] = [];
  private size = 0;
  constructor(private readonly stream: Writable) {}
  push(line: string): void {
    this.parts.push(line);
    this.size += line.length + 1;
  }
  get pending(): number {
    return this.size;
  }
  async flush(): Promise<void> {
    if (this.parts.length === 0) return;
    const text = `${this.parts.join('\n')}\n`;
    this.parts = [];
    this.size = 0;
    if (!this.stream.write(text)) await new Promise<void>((resolve) => this.stream.once('drain', resolve));
  }
  async end(): Promise<void> {
    await this.flush();
    if (this.stream === process.stdout) return;
    await new Promise<void>((resolve, reject) => {
      this.stream.once('error', reject);
      this.stream.end(resolve);
    });
  }
}

export async function replayCommand(config: FumidaiConfig, args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        output: { type: 'string', short: 'o' },
        'summary-only': { type: 'boolean' },
        'json-summary': { type: 'boolean' },
        'skip-invalid': { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
    });
  } catch (e) {
    process.stderr.write(`fumidai replay: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    process.stderr.write(`fumidai replay: name one input file (or - for standard input)\n${USAGE}`);
    return 2;
  }
  const file = positionals[0]!;
  const quiet = values.quiet === true;
  let stream: Writable = process.stdout;
  if (values.output) {
    try {
      stream = createWriteStream('', { fd: openSync(values.output, 'w') });
    } catch (e) {
      process.stderr.write(`fumidai replay: cannot write ${values.output}: ${(e as Error).message}\n`);
      return 2;
    }
  }
  const writer = new ChunkWriter(stream);
  let runner: ReplayRunner;
  try {
    runner = new ReplayRunner({ config, ...(values['summary-only'] ? {} : { emit: (l: string) => writer.push(l) }) });
  } catch (e) {
    // A database file or list the config names is unusable: the message names the setting.
    process.stderr.write(`fumidai replay: ${(e as Error).message}\n`);
    return 2;
  }

  const started = performance.now();
  const cpuStart = process.cpuUsage();
  let lastProgress = started;
  let lineNo = 0;
  let warnings = 0;
  const progress = (final: boolean): void => {
    if (quiet) return;
    const s = runner.summary();
    const messages = s.lines.message;
    const secs = (performance.now() - started) / 1000;
    const rate = secs > 0 ? Math.round(messages / secs) : 0;
    const cpu = process.cpuUsage(cpuStart);
    const cpuSecs = (cpu.user + cpu.system) / 1e6;
    const perCpu = final && cpuSecs > 0 ? `; ${Math.round(messages / cpuSecs).toLocaleString('en-US')} per CPU-second` : '';
    const text = `replay: ${lineNo.toLocaleString('en-US')} lines, ${messages.toLocaleString('en-US')} messages in ${secs.toFixed(1)} s (${rate.toLocaleString('en-US')} messages/s${perCpu})${final ? '' : `, virtual time ${s.to ?? '-'}`}`;
    process.stderr.write(process.stderr.isTTY && !final ? `\r${text}\x1b[K` : `${process.stderr.isTTY ? '\r\x1b[K' : ''}${text}\n`);
  };

  try {
    for await (const batch of readLineBatches(file)) {
      for (const text of batch) {
        lineNo++;
        const err = await runner.line(text, lineNo);
        if (err === null) continue;
        if (!values['skip-invalid']) {
          await writer.end();
          if (!quiet && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
          process.stderr.write(`fumidai replay: ${file}: ${err.message}\n(stopped; use --skip-invalid to skip bad lines)\n`);
          return 2;
        }
        runner.skipped();
        if (++warnings <= MAX_WARNINGS) process.stderr.write(`fumidai replay: warning: ${file}: ${err.message} (skipped)\n`);
      }
      if (writer.pending > 1 << 18) await writer.flush();
      const now = performance.now();
      if (now - lastProgress >= PROGRESS_MS) {
        lastProgress = now;
        progress(false);
      }
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES') {
      process.stderr.write(`fumidai replay: cannot read ${file}: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  }
  if (warnings > MAX_WARNINGS) process.stderr.write(`fumidai replay: warning: ${warnings - MAX_WARNINGS} more bad lines skipped\n`);

  const summary = runner.summary();
  writer.push(JSON.stringify(summary));
  await writer.end();
  await runner.close();
  if (lastProgress !== started || (performance.now() - started) > 1000) progress(true);
  if (!values['json-summary']) process.stderr.write(`\n${formatSummary(summary)}`);
  return 0;
}
