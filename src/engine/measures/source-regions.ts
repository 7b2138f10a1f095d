import { formatDuration } from '../../config/duration.ts';
import { centroid, distanceKm } from '../../geo/centroids.ts';
import type { Finding, Measure } from '../measure.ts';
import { impossibleTravel as travelText, manyCountries } from '../replies.ts';
import { countryWindow, penaltyFinding } from './source-common.ts';
import { distinctWindowsOf } from './source-ips.ts';

// Countermeasure 3, several regions at once. Botnets log into a stolen account from many
// countries (postfwd's GeoIP plugin: "usually more than 30"); a person is in one place.
// Logins and sends both count (the store keeps each address with its country).
//  - source-countries: distinct countries within source.regions.window, graded steps
//    (tighter limits, defer, suspend), each with the awareness notice "mail was sent
//    from 2 or more countries: change your password" (countermeasure 6).
//  - impossible-travel: two places too far apart for the time between them.

export const sourceCountries: Measure = {
  name: 'source-countries',
  assess(ctx): Finding | null {
    const r = ctx.config.source.regions;
    if (!ctx.config.source.enabled || !r.enabled || r.steps.length === 0) return null;
    const n = ctx.snapshot.distinctCountries[countryWindow(ctx.config, distinctWindowsOf(ctx.config))] ?? 0;
    let step = null;
    for (const s of r.steps) if (n >= s.countries && (step === null || s.countries > step.countries)) step = s;
    if (step === null) return null;
    const span = formatDuration(r.window);
    const reason = {
      module: 'source',
      rule: 'countries',
      detail: `${n} countries in ${span} (logins and sends), step ${step.countries}+: ${step.action}`,
      figures: { countries: n, threshold: step.countries, window: r.window },
    };
    return penaltyFinding(ctx, step, reason, manyCountries(n, r.window), {
      kind: 'multiple-countries',
      data: { countries: n, window: r.window, step: step.countries },
      onceWithin: r.noticeInterval,
    });
  },
};

export const impossibleTravel: Measure = {
  name: 'impossible-travel',
  assess(ctx): Finding | null {
    const rule = ctx.config.source.regions.impossibleTravel;
    const src = ctx.source;
    const prev = ctx.snapshot.previous;
    if (!ctx.config.source.enabled || !rule.enabled || !src || !prev) return null;
    const a = prev.place;
    const b = src.place;
    if (a.country === '--' || b.country === '--') return null;
    const pa = Number.isFinite(a.lat) ? ([a.lat, a.lon] as const) : centroid(a.country);
    const pb = Number.isFinite(b.lat) ? ([b.lat, b.lon] as const) : centroid(b.country);
    if (pa === null || pb === null) return null;
    const km = distanceKm(pa[0], pa[1], pb[0], pb[1]);
    if (km < rule.minDistanceKm) return null;
    const seconds = Math.max(1, (ctx.event.t - prev.t) / 1000);
    const kmh = km / (seconds / 3600);
    if (kmh <= rule.speedKmh) return null;
    const minutes = Math.round(seconds / 60);
    const reason = {
      module: 'source',
      rule: 'impossible-travel',
      detail: `${a.country} (${prev.ip}) then ${b.country} (${src.ip}): ${Math.round(km)} km in ${minutes} min = ${Math.round(kmh)} km/h, limit ${rule.speedKmh} km/h`,
      figures: { km: Math.round(km), minutes, kmh: Math.round(kmh), limit: rule.speedKmh, from: a.country, to: b.country },
    };
    return penaltyFinding(ctx, rule, reason, travelText(Math.round(km)), {
      kind: 'impossible-travel',
      data: { from: a.country, to: b.country, km: Math.round(km), minutes },
      onceWithin: ctx.config.source.regions.noticeInterval,
    });
  },
};
