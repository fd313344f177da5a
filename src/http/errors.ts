/**
 * REST error bodies (SPEC §11): every failure is `{"error":{"code","message","details"}}` with one
 * of a fixed set of codes, so clients branch on `code`, never on message text.
 *
 * Route code throws `ApiError` (or any error whose `.code` is one of ERROR_CODES); the HTTP
 * server's error handler turns everything else — framework errors, validation failures, crashes —
 * into the same shape via `toErrorReply`.
 */
import type { FastifyError } from 'fastify';

export const ERROR_CODES = [
  'INVALID_REQUEST',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'NOT_FOUND',
  'CONFLICT',
  'VALIDATION_ERROR',
  'RATE_LIMITED',
  'INTERNAL_ERROR',
  'SERVICE_UNAVAILABLE',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const STATUS: Record<ErrorCode, number> = {
  INVALID_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  VALIDATION_ERROR: 422,
  RATE_LIMITED: 429,
  INTERNAL_ERROR: 500,
  SERVICE_UNAVAILABLE: 503,
};

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(STATUS, code);
}

/** The HTTP status SPEC §11 assigns to an error code. */
export function httpStatusForCode(code: ErrorCode): number {
  return STATUS[code];
}

export type ErrorDetails = Record<string, unknown>;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details: ErrorDetails };
}

export function errorBody(code: ErrorCode, message: string, details: ErrorDetails = {}): ErrorBody {
  return { error: { code, message, details } };
}

/** The error route handlers throw. `status` defaults to the code's SPEC status. */
export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ErrorDetails = {},
    status?: number,
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status ?? httpStatusForCode(code);
  }
}

// Errors from the storage ports (src/store) that mean "try again later", not "bug".
const UNAVAILABLE_CODES = new Set(['DATABASE_UNAVAILABLE', 'BLOB_STORE_UNAVAILABLE']);

/** A field-level validation problem, in JSON Pointer form (RFC 6901) as Ajv reports it. */
export interface FieldIssue {
  path: string;
  message: string;
}

export interface ErrorReply {
  status: number;
  body: ErrorBody;
  /** Whether this is the server's fault (logged with its stack at error level). */
  serverFault: boolean;
}

interface AjvIssue {
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
}

function fieldIssues(validation: unknown): FieldIssue[] {
  if (!Array.isArray(validation)) return [];
  return (validation as AjvIssue[]).slice(0, 50).map((v) => {
    // A missing or an unknown property is reported on its parent; point at the property itself.
    const prop = v.params?.missingProperty ?? v.params?.additionalProperty;
    // RFC 6901 §3: "~" and "/" in a member name are written "~0" and "~1".
    const missing = typeof prop === 'string' ? `/${prop.replaceAll('~', '~0').replaceAll('/', '~1')}` : '';
    return { path: `${v.instancePath ?? ''}${missing}` || '/', message: v.message ?? 'is invalid' };
  });
}

function statusOf(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown })?.statusCode;
  return typeof s === 'number' && s >= 400 && s <= 599 ? s : undefined;
}

/**
 * Maps any thrown value to the SPEC §11 reply.
 *
 * Validation: a body that parses but breaks the route's schema is 422 VALIDATION_ERROR (the
 * request was well-formed, its content is not acceptable), with one entry per field. Bad query
 * strings, path parameters or headers are 400 INVALID_REQUEST: the request itself is malformed.
 * A body that cannot be parsed at all (broken JSON) is likewise 400 INVALID_REQUEST.
 */
export function toErrorReply(err: unknown, ctx: { bodyLimitBytes: number }): ErrorReply {
  if (err instanceof ApiError) {
    return { status: err.status, body: errorBody(err.code, err.message, err.details), serverFault: err.status >= 500 };
  }
  const fe = err as Partial<FastifyError> & { details?: unknown };
  if (isErrorCode(fe?.code)) {
    const status = httpStatusForCode(fe.code);
    const details = fe.details && typeof fe.details === 'object' ? (fe.details as ErrorDetails) : {};
    const message = status >= 500 && fe.code === 'INTERNAL_ERROR' ? 'internal error' : String(fe.message ?? fe.code);
    return { status, body: errorBody(fe.code, message, details), serverFault: status >= 500 };
  }
  if (typeof fe?.code === 'string' && UNAVAILABLE_CODES.has(fe.code)) {
    // Which store is down is for the log, not the client.
    return { status: 503, body: errorBody('SERVICE_UNAVAILABLE', 'a storage backend is temporarily unavailable; retry later'), serverFault: true };
  }
  if (fe?.validation) {
    const errors = fieldIssues(fe.validation);
    if (fe.validationContext === 'body') {
      return { status: 422, body: errorBody('VALIDATION_ERROR', 'request body failed validation', { errors }), serverFault: false };
    }
    const where = fe.validationContext ?? 'request';
    return { status: 400, body: errorBody('INVALID_REQUEST', `invalid ${where}`, { errors }), serverFault: false };
  }
  if (fe?.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return {
      status: 413,
      body: errorBody('INVALID_REQUEST', `request body exceeds the limit of ${ctx.bodyLimitBytes} bytes`, { limit_bytes: ctx.bodyLimitBytes }),
      serverFault: false,
    };
  }
  const status = statusOf(err);
  if (status !== undefined && status < 500) {
    // Framework client errors (bad JSON, unsupported media type, …): their messages describe the
    // request, not server internals, so they are safe to return.
    const code: ErrorCode =
      status === 401 ? 'UNAUTHORIZED'
      : status === 403 ? 'FORBIDDEN'
      : status === 404 ? 'NOT_FOUND'
      : status === 409 ? 'CONFLICT'
      : status === 422 ? 'VALIDATION_ERROR'
      : status === 429 ? 'RATE_LIMITED'
      : 'INVALID_REQUEST';
    return { status, body: errorBody(code, String(fe.message ?? 'invalid request')), serverFault: false };
  }
  if (status === 503) {
    return { status: 503, body: errorBody('SERVICE_UNAVAILABLE', 'service temporarily unavailable; retry later'), serverFault: true };
  }
  // Anything else is a bug or an unexpected failure: no message, no stack to the client.
  return { status: 500, body: errorBody('INTERNAL_ERROR', 'internal error'), serverFault: true };
}
