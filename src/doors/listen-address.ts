// "host:port", "[v6]:port" or "unix:/path" as used in config listen keys.

export type ListenAddress = { readonly kind: 'tcp'; readonly host: string; readonly port: number } | { readonly kind: 'unix'; readonly path: string };

export function parseListenAddress(text: string): ListenAddress | Error {
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    return path.startsWith('/') ? { kind: 'unix', path } : new Error(`"${text}": unix socket path must be absolute`);
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return new Error(`"${text}" is not "host:port", "[v6]:port" or "unix:/path"`);
  const port = Number(m[3]);
  if (port > 65535) return new Error(`"${text}": port out of range`);
  return { kind: 'tcp', host: m[1] ?? m[2]!, port };
}

export function formatListenAddress(a: ListenAddress): string {
  return a.kind === 'unix' ? `unix:${a.path}` : a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
