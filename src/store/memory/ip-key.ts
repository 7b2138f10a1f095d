// IPv4 addresses are kept as one Uint32 inside the sender slab; anything else
// (IPv6) goes to the per-sender overflow set as text. 0 means "not IPv4".

export function ipv4ToInt(ip: string): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || part > 255) return 0;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      part = part * 10 + (c - 48);
      digits++;
    } else {
      return 0;
    }
  }
  if (dots !== 3 || digits === 0 || part > 255) return 0;
  const v = value * 256 + part;
  // 0.0.0.0 is not a client address; reserve 0 for "none".
  return v === 0 ? 0 : v >>> 0;
}

export function intToIpv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}
