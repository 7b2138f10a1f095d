import { connect } from 'node:net';

// A client of a real Rspamd: the HTTP scan API (/checkv2) of its normal worker and the
// learning endpoints (/learnspam, /learnham) of its controller. Optional: the content
// module combines Rspamd's score with ours when `content.rspamd.url` is set.
// https://rspamd.com/doc/developers/protocol.html

export interface RspamdSymbol {
  readonly name: string;
  readonly score: number;
  readonly options?: readonly string[];
}

export interface RspamdResult {
  readonly score: number;
  readonly required: number;
  readonly action: string;
  readonly symbols: Readonly<Record<string, RspamdSymbol>>;
  /** Bayes spam probability from BAYES_SPAM/BAYES_HAM ("97.5%" confidence in that class), or null when Bayes said nothing. */
  readonly bayes: number | null;
}

/** What Rspamd is told about the transaction (its HTTP request headers). */
export interface RspamdMeta {
  readonly ip?: string | null;
  readonly user?: string | null;
  readonly from?: string;
  readonly queueId?: string;
  /** Rspamd settings (JSON), e.g. {"symbols_enabled": ["BAYES_SPAM", "BAYES_HAM"]}. */
  readonly settings?: Readonly<Record<string, unknown>>;
}

export class RspamdError extends Error {
  override readonly name = 'RspamdError';
}

function bayesOf(symbols: Readonly<Record<string, RspamdSymbol>>): number | null {
  for (const [name, spam] of [['BAYES_SPAM', true], ['BAYES_HAM', false]] as const) {
    const s = symbols[name];
    if (s === undefined) continue;
    // The option is the confidence in the symbol's own class: "99.5%" on BAYES_HAM is ham.
    const pct = s.options?.map((o) => /^([\d.]+)%$/.exec(o)?.[1]).find((x) => x !== undefined);
    if (pct !== undefined) return spam ? Number(pct) / 100 : 1 - Number(pct) / 100;
    return spam ? 1 : 0;
  }
  return null;
}

export class RspamdClient {

  constructor(
    /** Normal worker, e.g. http://127.0.0.1:11333 */
    readonly url: string,
    readonly timeoutMs = 2000,
    /** Controller, e.g. http://127.0.0.1:11334 (learning only). */
    readonly controllerUrl: string | null = null,
    private readonly password: string | null = null,
  ) {}

  // One connection per request, spoken over a plain socket: Rspamd 3.4 sometimes sends
  // bytes after a "Connection: close" answer (its error replies), which Node's HTTP
  // client refuses ("Data after Connection: close"). The answer is read to EOF and cut
  // at its Content-Length.
  private request(base: string, path: string, body: Buffer, headers: Record<string, string>): Promise<{ status: number; body: string }> {
    const u = new URL(path, base);
    const head = [`POST ${u.pathname} HTTP/1.1`, `Host: ${u.host}`, 'Connection: close', `Content-Length: ${body.length}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v.replace(/[\r\n]/g, ' ')}`)].join('\r\n');
    return new Promise((resolve, reject) => {
      const sock = connect({ host: u.hostname, port: Number(u.port || 80) });
      const chunks: Buffer[] = [];
      let done = false;
      const finish = (err: Error | null): void => {
        if (done) return;
        done = true;
        sock.destroy();
        if (err !== null) return reject(err instanceof RspamdError ? err : new RspamdError(`rspamd: ${err.message}`));
        const all = Buffer.concat(chunks);
        const end = all.indexOf('\r\n\r\n');
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(all.toString('latin1', 0, Math.min(all.length, 64)));
        if (end < 0 || m === null) return reject(new RspamdError(`rspamd: malformed HTTP answer (${all.length} bytes: ${JSON.stringify(all.toString('latin1', 0, 120))})`));
        const len = /\r\ncontent-length:\s*(\d+)/i.exec(all.toString('latin1', 0, end + 2))?.[1];
        const payload = all.subarray(end + 4, len !== undefined ? end + 4 + Number(len) : all.length);
        resolve({ status: Number(m[1]), body: payload.toString('utf8') });
      };
      sock.setTimeout(this.timeoutMs, () => finish(new RspamdError(`rspamd: no answer within ${this.timeoutMs} ms`)));
      sock.on('data', (c: Buffer) => chunks.push(c));
      sock.on('end', () => finish(null));
      sock.on('close', () => finish(null));
      sock.on('error', (e) => finish(e));
      sock.write(`${head}\r\n\r\n`);
      sock.write(body); // no half-close: the normal worker drops a request whose client shut its side
    });
  }

  async check(raw: Buffer, meta: RspamdMeta = {}): Promise<RspamdResult> {
    const headers: Record<string, string> = {};
    if (meta.ip) headers['IP'] = meta.ip;
    if (meta.user) headers['User'] = meta.user;
    if (meta.from !== undefined) headers['From'] = meta.from;
    if (meta.queueId !== undefined) headers['Queue-Id'] = meta.queueId;
    if (meta.settings !== undefined) headers['Settings'] = JSON.stringify(meta.settings);
    const res = await this.request(this.url, '/checkv2', raw, headers);
    if (res.status !== 200) throw new RspamdError(`rspamd: /checkv2 answered ${res.status}: ${res.body.slice(0, 200)}`);
    let data: { score?: number; required_score?: number; action?: string; symbols?: Record<string, RspamdSymbol> };
    try {
      data = JSON.parse(res.body) as typeof data;
    } catch {
      throw new RspamdError('rspamd: /checkv2 answer is not JSON');
    }
    const symbols = data.symbols ?? {};
    return { score: data.score ?? 0, required: data.required_score ?? 0, action: data.action ?? 'no action', symbols, bayes: bayesOf(symbols) };
  }

  /**
   * Teaches Rspamd's Bayes classifier (controller). Resolves false when Rspamd declined
   * (already learned). `bulk` learns even messages Bayes already puts in the class with
   * 95% confidence, which Rspamd otherwise skips (lua_bayes_learn.lua): corpus training.
   */
  async learn(kind: 'spam' | 'ham', raw: Buffer, bulk = false): Promise<boolean> {
    if (this.controllerUrl === null) throw new RspamdError('rspamd: no controller URL for learning');
    const headers: Record<string, string> = this.password !== null ? { Password: this.password } : {};
    if (bulk) headers['Learn-Type'] = 'bulk';
    const res = await this.request(this.controllerUrl, kind === 'spam' ? '/learnspam' : '/learnham', raw, headers);
    if (res.status === 200) return true;
    // 208: already learned; 204: Rspamd's learn conditions declined (e.g. too few tokens).
    if (res.status === 208 || res.status === 204 || /already learned|denied learning/i.test(res.body)) return false;
    throw new RspamdError(`rspamd: learn ${kind} answered ${res.status}: ${res.body.slice(0, 200)}`);
  }

  close(): void {
    /* no pooled connections */
  }
}

/** Maps an Rspamd score to a spam probability: `center` gives 0.5, `scale` points per e-fold of odds. */
export function rspamdProbability(score: number, center: number, scale: number): number {
  return 1 / (1 + Math.exp(-(score - center) / scale));
}

/** Combines two spam probabilities in logit space: (1 - weight) * ours + weight * theirs. */
export function combineProbabilities(ours: number, theirs: number, weight: number): number {
  const logit = (p: number): number => {
    const q = Math.min(1 - 1e-9, Math.max(1e-9, p));
    return Math.log(q / (1 - q));
  };
  return 1 / (1 + Math.exp(-((1 - weight) * logit(ours) + weight * logit(theirs))));
}
