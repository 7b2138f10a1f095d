import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { stripMboxFrom } from './mime.ts';

// Loading labelled mail: folders of message files (.eml or any file; recursively) and
// mbox files, and the SpamAssassin corpus split of shared/data/spamassassin-split.

export interface LabelledMessage {
  readonly id: string;
  readonly label: 0 | 1;
  readonly raw: Buffer;
}

/** Splits an mbox file at "From " lines; ">From " quoting is undone. */
export function splitMbox(data: Buffer): Buffer[] {
  const s = data.toString('latin1');
  const out: Buffer[] = [];
  let start = s.startsWith('From ') ? 0 : -1;
  let pos = 0;
  for (;;) {
    const next = s.indexOf('\nFrom ', pos);
    if (next < 0) break;
    if (start >= 0) out.push(Buffer.from(s.slice(start, next + 1), 'latin1'));
    start = next + 1;
    pos = next + 1;
  }
  if (start >= 0) out.push(Buffer.from(s.slice(start), 'latin1'));
  return out.map((m) => {
    const body = stripMboxFrom(m);
    const text = body.toString('latin1');
    return text.includes('\n>From ') ? Buffer.from(text.replace(/\n>(>*From )/g, '\n$1'), 'latin1') : body;
  });
}

function looksLikeMbox(file: string, head: Buffer): boolean {
  return /\.mbox$/i.test(file) || (head.toString('latin1', 0, 5) === 'From ' && head.toString('latin1').includes('\nFrom '));
}

/** Every message under a path: a message file, an mbox file, or a folder of either (recursively, sorted). */
export function readMessages(path: string, label: 0 | 1): LabelledMessage[] {
  const st = statSync(path);
  if (st.isDirectory()) {
    return readdirSync(path)
      .filter((n) => !n.startsWith('.'))
      .sort()
      .flatMap((n) => readMessages(join(path, n), label));
  }
  const data = readFileSync(path);
  if (looksLikeMbox(path, data)) return splitMbox(data).map((raw, i) => ({ id: `${path}#${i + 1}`, label, raw }));
  return [{ id: path, label, raw: stripMboxFrom(data) }];
}

// ---------------------------------------------------------------------------
// The SpamAssassin public corpus and its fixed split (shared/data/spamassassin-split).

export type Split = 'train' | 'dev' | 'holdout';

export interface ManifestEntry {
  readonly id: string;
  readonly subcorpus: string;
  readonly label: 'ham' | 'spam';
  readonly sha256: string;
  readonly size: number;
  readonly split: Split;
}

export function readManifest(file: string): ManifestEntry[] {
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
  const head = lines.shift()?.split('\t') ?? [];
  if (head.join(',') !== 'id,subcorpus,label,sha256,size,split') throw new Error(`${file}: unexpected columns ${head.join(',')}`);
  return lines.map((l) => {
    const [id, subcorpus, label, sha256, size, split] = l.split('\t') as [string, string, 'ham' | 'spam', string, string, Split];
    return { id, subcorpus, label, sha256, size: Number(size), split };
  });
}

/** The split a message hash falls in: first hex digit 0-9 train, a-c dev, d-f holdout. */
export function splitOf(sha256: string): Split {
  const d = parseInt(sha256[0]!, 16);
  return d <= 9 ? 'train' : d <= 12 ? 'dev' : 'holdout';
}

const GROUP_DIRS: Readonly<Record<string, string>> = {
  easy_ham: 'easy-ham-1',
  easy_ham_2: 'easy-ham-2',
  hard_ham: 'hard-ham-1',
  spam: 'spam-1',
  spam_2: 'spam-2',
};

export interface CorpusMessage extends LabelledMessage {
  readonly split: Split;
  readonly sha256: string;
}

/**
 * Reads the corpus from the npm package's data folder (`data/<group>/<nnnnn>.<md5>.txt`,
 * not the .json twins), strips the leading mbox line, hashes each message and checks
 * the hash, size and split against the manifest. Throws on any difference.
 */
export function readSpamAssassin(dataDir: string, manifest: readonly ManifestEntry[]): CorpusMessage[] {
  const files = new Map<string, string>();
  for (const [sub, dir] of Object.entries(GROUP_DIRS)) {
    for (const name of readdirSync(join(dataDir, dir))) {
      const m = /^(\d{5})\.[0-9a-f]+\.txt$/.exec(name);
      if (m) files.set(`${sub}-${m[1]}`, join(dataDir, dir, name));
    }
  }
  if (files.size !== manifest.length) throw new Error(`corpus: ${files.size} message files, manifest lists ${manifest.length}`);
  return manifest.map((e) => {
    const file = files.get(e.id);
    if (file === undefined) throw new Error(`corpus: no file for ${e.id}`);
    const raw = stripMboxFrom(readFileSync(file));
    const sha256 = createHash('sha256').update(raw).digest('hex');
    if (sha256 !== e.sha256 || raw.length !== e.size) throw new Error(`corpus: ${e.id} (${file}) has sha256 ${sha256}, size ${raw.length}; manifest says ${e.sha256}, ${e.size}`);
    if (splitOf(sha256) !== e.split) throw new Error(`corpus: ${e.id}: split ${e.split} does not follow from its hash`);
    return { id: e.id, label: e.label === 'spam' ? 1 : 0, raw, split: e.split, sha256 };
  });
}

/** The body (bytes after the first blank line) with runs of white space collapsed. */
export function bodyKey(raw: Buffer): string {
  const s = raw.toString('latin1');
  const i = s.indexOf('\n\n');
  const body = i < 0 ? '' : s.slice(i + 2);
  return createHash('sha256').update(body.replace(/\s+/g, ' ').trim(), 'latin1').digest('hex');
}

/**
 * Holdout messages whose body also occurs in train, up to white space: the README's
 * 39 near-duplicates (32 spam, 7 ham). Reports show figures with and without them.
 */
export function nearDuplicateIds(messages: readonly CorpusMessage[]): Set<string> {
  const train = new Set(messages.filter((m) => m.split === 'train').map((m) => bodyKey(m.raw)));
  return new Set(messages.filter((m) => m.split === 'holdout' && train.has(bodyKey(m.raw))).map((m) => m.id));
}
