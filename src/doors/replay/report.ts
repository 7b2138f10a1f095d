import { table } from '../../cli/table.ts';
import type { Percentiles, ReplaySummary } from './metrics.ts';

// The human-readable form of a replay summary (the JSON form is the summary line).

const indent = (text: string): string => text.split('\n').map((l) => `  ${l}`).join('\n');
const n = (v: number): string => v.toLocaleString('en-US');
const p = (x: Percentiles): string => (x.n === 0 ? '-' : `median ${x.median}, p95 ${x.p95}, max ${x.max} (n=${x.n})`);

export function formatSummary(s: ReplaySummary): string {
  const out: string[] = [];
  const w = s.warmup;
  if (w) {
    // The warm-up was replayed like the rest (its suspensions carry on) but is not scored.
    const wm = w.messages;
    out.push(`Warm-up ${w.from ?? '-'} .. ${w.to ?? '-'} (replayed, not scored): messages ${n(wm.total)}, defer ${n(wm.defer)}, reject ${n(wm.reject)}; suspensions ${n(w.suspensions.total)}`);
    const ws = w.labels?.legit.suspensions ?? [];
    if (ws.length > 0) out.push(`  legitimate users suspended in the warm-up: ${n(w.labels!.legit.suspendedUsers)}`);
    for (const x of ws.slice(0, 20)) out.push(`    ${x.user}${x.group ? ` [${x.group}]` : ''} ${x.t} ${x.rule}: ${x.detail}`);
    if (ws.length > 20) out.push(`    ... ${ws.length - 20} more in the JSON summary`);
    out.push('');
  }
  out.push(`Replay summary${w ? ' (scored period)' : ''}: ${s.from ?? '-'} .. ${s.to ?? '-'}`);
  out.push(
    `lines ${n(s.lines.total)} (user ${n(s.lines.user)}, auth ${n(s.lines.auth)}, message ${n(s.lines.message)}` +
      `${s.lines.skipped ? `, skipped ${n(s.lines.skipped)}` : ''}${s.lines.blank ? `, blank ${n(s.lines.blank)}` : ''})`,
  );
  const m = s.messages;
  out.push(
    `messages ${n(m.total)}: accept ${n(m.accept)}, partial ${n(m.partial)}, defer ${n(m.defer)}, reject ${n(m.reject)}` +
      `${m.hold ? `, hold ${n(m.hold)}` : ''}${m.discard ? `, discard ${n(m.discard)}` : ''}; recipients ${n(s.recipients.accepted)} of ${n(s.recipients.total)} accepted`,
  );
  out.push(`logins ok ${n(s.logins.ok)}, failed ${n(s.logins.failed)}; suspensions ${n(s.suspensions.total)} (auto-released ${n(s.suspensions.released)})`);
  if (s.storeErrors) out.push(`STORE ERRORS: ${s.storeErrors}`);
  const rules = Object.entries(s.suspensions.byRule);
  if (rules.length > 0) {
    out.push('', 'Suspensions by rule');
    out.push(table(['rule', 'total', 'true', 'false', 'unlabelled'], rules.map(([r, c]) => [r, c.total, c.true, c.false, c.unlabelled])));
  }
  const l = s.labels;
  if (l) {
    const a = l.abuse;
    out.push('', 'Compromised accounts (users with abuse-labelled messages)');
    out.push(`  accounts ${n(a.accounts)}: stopped ${n(a.stoppedAccounts)}, never stopped ${n(a.neverStopped)}; login-only accounts ${n(a.loginOnlyAccounts)}`);
    out.push(`  abuse messages accepted before stopped: ${p(a.acceptedBeforeStopped)}`);
    out.push(`  minutes from first abuse message to stop: ${p(a.minutesToStop)}`);
    out.push(`  abuse messages out: ${n(a.accepted)} of ${n(a.messages)} (${n(a.recipientsOut)} recipients)`);
    if (Object.keys(a.stoppedBy).length > 0) out.push(`  stopped by: ${Object.entries(a.stoppedBy).map(([r, c]) => `${r} ${c}`).join(', ')}`);
    if (a.byAttack) {
      out.push(
        indent(table(
          ['attack', 'accounts', 'messages', 'out', 'out before stop (median/p95/max)', 'never stopped'],
          Object.entries(a.byAttack).map(([k, x]) => [
            k,
            x.accounts,
            x.messages,
            x.accepted,
            x.acceptedBeforeStopped.n === 0 ? '-' : `${x.acceptedBeforeStopped.median}/${x.acceptedBeforeStopped.p95}/${x.acceptedBeforeStopped.max}`,
            x.neverStopped,
          ]),
        )),
      );
    }
    const g = l.legit;
    out.push('', 'Legitimate users (labelled, no abuse)');
    out.push(`  users ${n(g.users)}, messages ${n(g.messages)}`);
    out.push(`  deferred ${n(g.deferred)} (${g.deferredPct} %), rejected ${n(g.rejected)} (${g.rejectedPct} %), partly refused ${n(g.partial)}`);
    out.push(`  wrongly suspended users: ${n(g.suspendedUsers)}`);
    for (const x of g.suspensions.slice(0, 20)) out.push(`    ${x.user}${x.group ? ` [${x.group}]` : ''} ${x.t} ${x.rule}: ${x.detail}`);
    if (g.suspensions.length > 20) out.push(`    ... ${g.suspensions.length - 20} more in the JSON summary`);
    if (g.byGroup) {
      out.push(
        indent(table(
          ['group', 'users', 'messages', 'deferred', 'rejected', 'partial', 'suspended users'],
          Object.entries(g.byGroup).map(([k, x]) => [k, x.users, x.messages, x.deferred, x.rejected, x.partial, x.suspendedUsers]),
        )),
      );
    }
    out.push(`  owners of compromised accounts: ${n(l.ownersOfCompromised.refused)} of their ${n(l.ownersOfCompromised.messages)} legit messages refused`);
    const refusals = Object.entries(l.refusalsByRule);
    if (refusals.length > 0) {
      out.push('', 'Refused messages by rule');
      out.push(table(['rule', 'legit', 'abuse', 'unlabelled'], refusals.map(([r, c]) => [r, c.legit, c.abuse, c.unlabelled])));
    }
  }
  return `${out.join('\n')}\n`;
}
