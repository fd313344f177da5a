/**
 * What a DMARC result does to a message (RFC 7489 §6.6.4 and §6.7): pure, so every branch is a
 * unit test.
 *
 * Only a DMARC `fail` under a published policy changes anything. `temperror` and `permerror`
 * (our DNS trouble, or a broken record) never reject or quarantine: mail must not be lost because
 * a lookup timed out here.
 */
import type { EmailAuthConfig } from '../config/sections/emailauth.js';

export type DmarcPolicy = 'none' | 'quarantine' | 'reject';
export type Disposition = 'accept' | 'quarantine' | 'reject';

/**
 * The `p=` / `sp=` value as a policy. RFC 7489 §6.3: p= is one of none, quarantine, reject
 * (case-insensitive); anything else is treated as `none` (§6.6.3 step 6 lets a receiver apply
 * "none" when the policy cannot be understood). No record → null.
 */
export function parseDmarcPolicy(value: unknown): DmarcPolicy | null {
  if (value === undefined || value === null || value === false) return null;
  const v = String(value).trim().toLowerCase();
  return v === 'reject' || v === 'quarantine' ? v : 'none';
}

/** RFC 7489 §6.3: pct= is 0–100, default 100. Values outside are clamped; non-numbers mean 100. */
export function normalisePct(value: unknown): number {
  const n = typeof value === 'number' ? value : Number.parseInt(String(value ?? ''), 10);
  if (!Number.isFinite(n)) return 100;
  return Math.min(100, Math.max(0, Math.floor(n)));
}

export interface DmarcEvaluation {
  /** The DMARC method result: pass, fail, none, temperror, permerror. */
  result: string;
  /** The policy that applies to the From domain (p=, or sp= for a sub-domain: mailauth chooses). */
  policy: DmarcPolicy | null;
  pct: number;
}

/**
 * RFC 7489 §6.6.4: when pct < 100, a message not selected by sampling gets the next less strict
 * policy (reject → quarantine, quarantine → none). `random` returns [0, 1).
 */
export function sampledPolicy(policy: DmarcPolicy, pct: number, random: () => number = Math.random): DmarcPolicy {
  if (pct >= 100 || random() * 100 < pct) return policy;
  return policy === 'reject' ? 'quarantine' : 'none';
}

/**
 * The disposition of a message. `enforce_reject: false` downgrades a reject to quarantine
 * (a local policy override, RFC 7489 §6.7), so the mail is still set apart; `quarantine: false`
 * delivers quarantined mail normally.
 */
export function dmarcDisposition(outcome: DmarcEvaluation, config: EmailAuthConfig['dmarc'], random: () => number = Math.random): Disposition {
  if (outcome.result !== 'fail' || !outcome.policy || outcome.policy === 'none') return 'accept';
  const policy = sampledPolicy(outcome.policy, outcome.pct, random);
  if (policy === 'reject' && config.enforce_reject) return 'reject';
  if (policy === 'reject' || policy === 'quarantine') return config.quarantine ? 'quarantine' : 'accept';
  return 'accept';
}
