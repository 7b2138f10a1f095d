import { domainOf, headerAddresses, identitiesOf, matches, normaliseAddress } from '../../identity/addresses.ts';
import type { Finding, Measure } from '../measure.ts';
import { render, senderMismatch } from '../replies.ts';
import { countryWindow, isAbroad } from './source-common.ts';
import { distinctWindowsOf } from './source-ips.ts';

// Countermeasure 5: the login must agree with the sender information. The envelope
// From is checked at RCPT and END-OF-MESSAGE (every door sees it); the header From at
// END-OF-MESSAGE when the door sees headers (milter, gateway, replay). Identities: the
// user's addresses (primary, aliases, verified third-party; "@domain" entries), else the
// login itself when it is an address, else login@defaultDomains.
// Scope (spoofing.scope): always; abroad-only (the source document's choice, so that
// legitimate third-party sending at home keeps working); or only when other signals are
// raised (abroad, a reputation listing, two or more countries in the regions window).
export const senderSpoofing: Measure = {
  name: 'sender-spoofing',
  assess(ctx): Finding | null {
    const cfg = ctx.config.spoofing;
    const e = ctx.event;
    if (!cfg.enabled || e.kind === 'auth') return null;
    if (ctx.settings?.spoofingExempt === true) return null;
    const sender = e.sender;
    // Scope first: at home under "abroad-only" (most requests) nothing else is computed.
    const abroad = isAbroad(ctx.source, ctx.config);
    if (cfg.scope === 'abroad-only' && !abroad) return null;
    let scopeWhy: string;
    if (cfg.scope === 'always') {
      scopeWhy = 'scope always';
    } else if (cfg.scope === 'abroad-only') {
      if (!abroad) return null;
      scopeWhy = `scope abroad-only: connection from ${ctx.source!.place.country}`;
    } else {
      const countries = ctx.config.source.enabled ? (ctx.snapshot.distinctCountries[countryWindow(ctx.config, distinctWindowsOf(ctx.config))] ?? 0) : 0;
      const signals = [
        ...(abroad ? [`abroad (${ctx.source!.place.country})`] : []),
        ...(ctx.source && ctx.source.listings.length > 0 ? [`listed (${ctx.source.listings.map((l) => l.list).join(',')})`] : []),
        ...(countries >= 2 ? [`${countries} countries`] : []),
      ];
      if (signals.length === 0) return null;
      scopeWhy = `scope signals: ${signals.join(', ')}`;
    }

    const loginDomain = domainOf(sender);
    if (cfg.exemptSenders.some((x) => x === sender || (x.startsWith('@') && x.slice(1) === loginDomain))) return null;
    const identities = identitiesOf(sender, ctx.settings, cfg);
    if (identities.length === 0) return null;
    const sep = cfg.subaddressSeparator;
    const checks: { which: 'envelope' | 'header'; address: string }[] = [];
    if (cfg.checkEnvelope && e.mailFrom !== '') checks.push({ which: 'envelope', address: normaliseAddress(e.mailFrom, sep) });
    if (cfg.checkHeader && e.kind === 'message' && e.headerFrom !== undefined) {
      for (const a of headerAddresses(e.headerFrom)) checks.push({ which: 'header', address: normaliseAddress(a, sep) });
    }
    for (const c of checks) {
      if (cfg.exemptFromDomains.includes(domainOf(c.address))) continue;
      if (matches(c.address, identities) !== null) continue;
      const shown = identities.slice(0, 5).map((i) => i.match).join(', ') + (identities.length > 5 ? `, … (${identities.length})` : '');
      const detail = `${c.which === 'envelope' ? 'envelope From' : 'header From'} ${c.address} is not an identity of login ${sender} (${shown}); ${scopeWhy}`;
      const reason = { module: 'spoofing', rule: `${c.which}-from-mismatch`, detail, figures: { address: c.address, login: sender, identities: identities.length } };
      const text = render(senderMismatch(c.address, c.which), ctx.config.replies.languages);
      switch (cfg.action) {
        case 'reject':
          return { action: 'reject', code: 550, enhanced: '5.7.1', text, reason };
        case 'defer':
          return { action: 'defer', code: 450, enhanced: '4.7.1', text, reason };
        case 'hold':
          return { action: 'hold', text: 'sender address does not match the login', reason, pool: cfg.pool };
        case 'pool':
          return { action: 'accept', reason, pool: cfg.pool };
      }
    }
    return null;
  },
};
