/**
 * Typed errors of the tenancy core. Each carries the REST error `code` of SPEC §11 and its HTTP
 * status, so the HTTP layer maps them without knowing tenancy, and the CLI prints `message` as is.
 *
 * Messages are written for an administrator and never name another tenant: a row outside the
 * caller's scope is reported exactly like a row that does not exist (SPEC §9, "cannot infer").
 */
export type TenancyErrorCode = 'NOT_FOUND' | 'CONFLICT' | 'VALIDATION_ERROR' | 'FORBIDDEN';

export abstract class TenancyError extends Error {
  abstract readonly code: TenancyErrorCode;
  abstract readonly httpStatus: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = new.target.name;
    this.details = details;
  }
}

/** 404: the row does not exist *or* lies outside the caller's scope (the two are indistinguishable). */
export class NotFoundError extends TenancyError {
  readonly code = 'NOT_FOUND' as const;
  readonly httpStatus = 404;
}

/** 409: the request is well-formed but clashes with existing state (duplicate name, dependent rows). */
export class ConflictError extends TenancyError {
  readonly code = 'CONFLICT' as const;
  readonly httpStatus = 409;
}

/** 422: an input value is malformed or outside its bounds; `details` names the field. */
export class ValidationError extends TenancyError {
  readonly code = 'VALIDATION_ERROR' as const;
  readonly httpStatus = 422;
}

/** 403: the caller's scope may see the row but not perform this action on it. */
export class ForbiddenError extends TenancyError {
  readonly code = 'FORBIDDEN' as const;
  readonly httpStatus = 403;
}

/**
 * A tenant plan limit (users, domains) would be exceeded.
 *
 * SPEC §4 allows 409 or 422 for "over user/domain limits"; we answer 409 CONFLICT because the
 * request itself is valid — it conflicts with the tenant's current state (how many rows it already
 * has) and succeeds unchanged once a row is removed or the limit raised. 422 stays reserved for
 * requests that are wrong in themselves. `details` = `{ limit, max, current }`.
 */
export class LimitExceededError extends ConflictError {
  constructor(limit: string, max: number, current: number) {
    super(`tenant limit reached: ${limit} is ${max} and ${current} already exist`, { limit, max, current });
  }
}

/** True for a UNIQUE/PRIMARY KEY violation in either dialect (a race lost against a concurrent insert). */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
