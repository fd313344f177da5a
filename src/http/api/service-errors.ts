/**
 * Errors of the core services (src/core/tenancy/errors.ts) in API terms (SPEC §11):
 *
 *   NotFoundError   → 404 NOT_FOUND         (missing, or outside the caller's scope: the same answer)
 *   ForbiddenError  → 403 FORBIDDEN
 *   ConflictError   → 409 CONFLICT          (duplicates, dependent rows, plan limits)
 *   ValidationError → 422 VALIDATION_ERROR
 *
 * The services name fields in their own (camelCase) words — `displayName`, `quotaBytes`,
 * `limits.max_users` — while the API speaks snake_case JSON. A field the service names is
 * reported the way the request body names it, both as `details.field` and as a JSON Pointer
 * (RFC 6901) in `details.errors[]`, the same shape body-schema failures have (src/http/errors.ts),
 * so a client highlights the offending input the same way whichever layer rejected it.
 */
import { TenancyError } from '../../core/tenancy/errors.js';
import { ApiError } from '../errors.js';

/** Service field name → API field name, where the plain camelCase → snake_case rule is not it. */
export type FieldNames = Readonly<Record<string, string>>;

// Service names that are not the body's name under the generic rule, shared by every resource.
const COMMON_FIELDS: FieldNames = {
  tenant: 'tenant_id',
  user: 'user_id',
  mailbox: 'mailbox_id',
  retentionDays: 'retention_days',
};

function snake(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * `displayName` → `display_name`, `user` → `user_id`, `limits.max_users` unchanged. Address
 * parsing names the part that failed after the field (`email local part`, `address domain`): the
 * field is the first word.
 */
export function apiFieldName(serviceField: string, fields: FieldNames = {}): string {
  const name = serviceField.split(' ')[0];
  const mapped = fields[name] ?? COMMON_FIELDS[name];
  if (mapped !== undefined) return mapped;
  return name.split('.').map(snake).join('.');
}

function pointer(field: string): string {
  // RFC 6901 §3: "~" and "/" inside a token are escaped.
  return `/${field.split('.').map((t) => t.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`;
}

/**
 * The ApiError for a core-service error; anything else is returned unchanged (rethrow it: the HTTP
 * error handler turns unknown errors into 500 without leaking their text).
 *
 *   try { … } catch (err) { throw mapServiceError(err); }
 */
export function mapServiceError(err: unknown, fields: FieldNames = {}): unknown {
  if (!(err instanceof TenancyError)) return err;
  const details: Record<string, unknown> = { ...(err.details ?? {}) };
  if (typeof details.field === 'string') {
    const field = apiFieldName(details.field, fields);
    details.field = field;
    if (err.code === 'VALIDATION_ERROR') details.errors = [{ path: pointer(field), message: err.message }];
  }
  return new ApiError(err.code, err.message, details);
}

/** Runs a service call, translating its errors (see mapServiceError). */
export async function callService<T>(fn: () => Promise<T>, fields: FieldNames = {}): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw mapServiceError(err, fields);
  }
}
