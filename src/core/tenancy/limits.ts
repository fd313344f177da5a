/**
 * Plans and per-tenant limits (SPEC §9: "plans/limits from config, overridable per tenant").
 * A tenant's effective limits are its plan's values with its overrides laid on top.
 */
import type { Plan } from '../../config/schema.js';
import { LimitExceededError, ValidationError } from './errors.js';
import type { LimitOverrides } from './types.js';

export const PLAN_KEYS = ['max_users', 'max_domains', 'storage_bytes', 'mailbox_storage_bytes', 'daily_outbound'] as const;
export type PlanKey = (typeof PLAN_KEYS)[number];

function isPlanKey(k: string): k is PlanKey {
  return (PLAN_KEYS as readonly string[]).includes(k);
}

/**
 * Validates a patch of limit overrides. A key set to `null` removes that override (the plan's
 * value applies again). Values are non-negative safe integers, like the plan schema's.
 */
export function applyLimitPatch(current: LimitOverrides, patch: Record<string, unknown>): LimitOverrides {
  const next: LimitOverrides = { ...current };
  for (const [k, v] of Object.entries(patch)) {
    if (!isPlanKey(k)) {
      throw new ValidationError(`unknown limit "${k}" (known: ${PLAN_KEYS.join(', ')})`, { field: `limits.${k}` });
    }
    if (v === null) {
      delete next[k];
      continue;
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new ValidationError(`limit "${k}" must be a non-negative integer`, { field: `limits.${k}` });
    }
    next[k] = v;
  }
  return next;
}

/** Decodes `tenants.limits_json`, ignoring keys a newer or older version no longer knows. */
export function parseLimitOverrides(json: string): LimitOverrides {
  const out: LimitOverrides = {};
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return out;
  }
  if (!raw || typeof raw !== 'object') return out;
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (isPlanKey(k) && typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) out[k] = v;
  }
  return out;
}

export function mergeLimits(plan: Plan, overrides: LimitOverrides): Plan {
  return { ...plan, ...overrides };
}

/**
 * Throws LimitExceededError when adding one more row would exceed `max`. For counts (users,
 * domains) the number is the maximum itself: 0 allows none. (Storage limits use 0 = unlimited,
 * as their config descriptions say; those are enforced by the mailbox-state service.)
 */
export function assertBelowLimit(limit: PlanKey, max: number, current: number): void {
  if (current >= max) throw new LimitExceededError(limit, max, current);
}
