import type { ContentContext } from '../../classify/analysis.ts';
import { routeStatus } from '../../pools/routing.ts';
import type { Finding, Measure } from '../measure.ts';
import { judge } from './content.ts';

// Countermeasure 2, pools: names the pool a message leaves through. New users and users
// who consented are routed by classification (suspect mail through the suspect pool,
// the rest through the clean one); existing users without consent stay on their route
// (src/pools/routing.ts, docs/pools.md). The door renders the pool, e.g. as the
// X-Fumidai-Pool header for Postfix. Only message events that carry content get a pool.

export const pool: Measure = {
  name: 'pool',
  assess(ctx): Finding | null {
    const r = ctx.config.routing;
    const e = ctx.event;
    if (!r.enabled || e.kind !== 'message' || ((e.raw === undefined || e.raw.length === 0) && (e.headers === undefined || e.headers.length === 0))) return null;
    const status = routeStatus(ctx.settings, r, e.t);
    if (status.kind === 'existing') {
      return {
        action: 'accept',
        pool: r.existingUsers,
        reason: { module: 'pool', rule: `existing-user`, detail: `existing user (${status.why}): stays on pool ${r.existingUsers}`, figures: { pool: r.existingUsers, status: status.why } },
      };
    }
    const a = (ctx as ContentContext).content ?? null;
    const j = a !== null ? judge(a, ctx.config) : null;
    const suspect = j?.suspect ?? false;
    const name = suspect ? r.suspect : r.clean;
    const who = status.kind === 'new' ? 'new user' : `consented (notice v${status.consent.version})`;
    const why = a === null ? 'not classified' : j!.campaign ? 'campaign' : `spam probability ${(a.probability * 100).toFixed(1)}% ${suspect ? '>=' : '<'} ${j!.threshold}`;
    return {
      action: 'accept',
      pool: name,
      reason: { module: 'pool', rule: suspect ? 'suspect' : 'clean', detail: `${who}, ${why}: pool ${name}`, figures: { pool: name, status: status.kind } },
    };
  },
};
