/**
 * Combining the answers of one hook chain into one decision (SPEC §6 "Aggregation"):
 *  - precedence reject > tempfail > quarantine > tag > allow; the first result with the strongest
 *    action decides;
 *  - a reject/tempfail stops the chain (the caller stops calling plugins, see `stopsChain`; results
 *    after the first stopper, if any are passed, are ignored so the outcome is the same either way);
 *  - tags merged and de-duplicated in order of first appearance;
 *  - score = max (default) or mean over the results that carry a score;
 *  - metadata namespaced by plugin id, so plugins cannot overwrite each other's keys;
 *  - the folder of the deciding quarantine, and the SMTP reply of the deciding reject/tempfail.
 */
import { hookSmtpReply } from './smtp-reply.js';
import { HOOK_ACTIONS, type HookAction, type HookResult, type SmtpReply } from './types.js';

export type ScoreMode = 'max' | 'mean';

export interface AggregateOptions {
  score: ScoreMode;
}

export interface AggregateDecision {
  action: HookAction;
  /** Plugin id of the result that decided the action; null when there were no results. */
  decidedBy: string | null;
  tags: string[];
  /** null when no result carried a score. */
  score: number | null;
  metadata: Record<string, Record<string, unknown>>;
  /** Only for quarantine: the deciding result's folder, if it named one (else the caller's default). */
  folder?: string;
  /** Flags asked for by the results, de-duplicated (applied only if the plugin may write flags). */
  flags: string[];
  /** Only for reject/tempfail. */
  smtp?: SmtpReply;
  /** Why plugin-supplied SMTP fields were replaced by defaults (for the logs). */
  smtpFallbacks?: string[];
}

/** Whether this action ends the chain: later hooks are not called (SPEC §6). */
export function stopsChain(action: HookAction): boolean {
  return action === 'reject' || action === 'tempfail';
}

/** Lower is stronger; HOOK_ACTIONS is ordered by precedence. */
function rank(action: HookAction): number {
  return HOOK_ACTIONS.indexOf(action);
}

export function aggregate(results: readonly HookResult[], opts: AggregateOptions = { score: 'max' }): AggregateDecision {
  const stop = results.findIndex((r) => stopsChain(r.response.action));
  const considered = stop === -1 ? results : results.slice(0, stop + 1);

  let decider: HookResult | undefined;
  const tags = new Set<string>();
  const flags = new Set<string>();
  const scores: number[] = [];
  const metadata: Record<string, Record<string, unknown>> = {};

  for (const r of considered) {
    const res = r.response;
    if (!decider || rank(res.action) < rank(decider.response.action)) decider = r;
    for (const t of res.tags ?? []) tags.add(t);
    for (const f of res.flags ?? []) flags.add(f);
    if (typeof res.score === 'number' && Number.isFinite(res.score)) scores.push(res.score);
    if (res.metadata && Object.keys(res.metadata).length > 0) {
      // The same plugin may answer twice (two hooks of one type); its later keys win.
      metadata[r.pluginId] = { ...(metadata[r.pluginId] ?? {}), ...res.metadata };
    }
  }

  const decision: AggregateDecision = {
    action: decider?.response.action ?? 'allow',
    decidedBy: decider?.pluginId ?? null,
    tags: [...tags],
    score: scores.length === 0 ? null : opts.score === 'mean' ? scores.reduce((a, b) => a + b, 0) / scores.length : Math.max(...scores),
    metadata,
    flags: [...flags],
  };
  if (decider && decision.action === 'quarantine' && decider.response.folder !== undefined) decision.folder = decider.response.folder;
  if (decider && (decision.action === 'reject' || decision.action === 'tempfail')) {
    const { fallbacks, ...reply } = hookSmtpReply(decision.action, decider.response);
    decision.smtp = reply;
    if (fallbacks.length > 0) decision.smtpFallbacks = fallbacks;
  }
  return decision;
}
