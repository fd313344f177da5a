/**
 * The SPEC §11 envelope as TypeBox schemas, shared by every route so that the OpenAPI document
 * (generated from these) and the wire agree:
 *
 *  - success `{"data": …}`; lists `{"data": [...], "pagination": {"cursor", "has_more"}}`;
 *  - errors `{"error": {"code", "message", "details"}}`;
 *  - `limit` 1–100 (default 50) and an opaque `cursor` (keyset position, base64url JSON);
 *    offset paging only for logs (`offset` ≤ 10 000).
 *
 * Response schemas also act as an allowlist: Fastify serializes only the properties they declare,
 * so a field that is not in a schema (a hash, a secret) cannot reach a client by accident.
 */
import { Type, type TSchema } from '@sinclair/typebox';
import { ERROR_CODES } from '../errors.js';
import { ApiError } from '../errors.js';

export const ErrorSchema = Type.Object(
  {
    error: Type.Object({
      code: Type.Union(ERROR_CODES.map((c) => Type.Literal(c))),
      message: Type.String(),
      details: Type.Record(Type.String(), Type.Unknown()),
    }),
  },
  { $id: 'Error', title: 'Error' },
);

/** `{"data": T}`. */
export function Data<T extends TSchema>(item: T) {
  return Type.Object({ data: item });
}

export const PaginationSchema = Type.Object({
  cursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as `cursor` to get the next page; null on the last page.' }),
  has_more: Type.Boolean(),
});

/** `{"data": T[], "pagination": {...}}`. */
export function Page<T extends TSchema>(item: T) {
  return Type.Object({ data: Type.Array(item), pagination: PaginationSchema });
}

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 100;
export const MAX_OFFSET = 10_000;

/** Query properties every cursor-paged list accepts; spread into the route's querystring schema. */
export const CursorQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
};

/** Offset paging (audit logs only, SPEC §11). */
export const OffsetQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_OFFSET, default: 0 })),
};

export const OffsetPaginationSchema = Type.Object({ offset: Type.Integer(), limit: Type.Integer(), has_more: Type.Boolean() });

export const IdParam = Type.Object({ id: Type.String({ format: 'uuid' }) }, { additionalProperties: false });

/** Opaque cursor: base64url of a JSON value (the keyset position). */
export function encodeCursor(position: unknown): string {
  return Buffer.from(JSON.stringify(position), 'utf8').toString('base64url');
}

/** Decodes a cursor made by `encodeCursor`; a malformed one is INVALID_REQUEST. */
export function decodeCursor<T = unknown>(cursor: string | undefined, check?: (v: unknown) => v is T): T | undefined {
  if (cursor === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new ApiError('INVALID_REQUEST', 'malformed cursor', { field: 'cursor' });
  }
  if (check && !check(value)) throw new ApiError('INVALID_REQUEST', 'malformed cursor', { field: 'cursor' });
  return value as T;
}

/**
 * A page from `limit + 1` fetched rows: the extra row only tells whether there is more.
 * `position` turns the last returned row into the cursor's keyset position.
 */
export function pageOf<R, O>(rows: R[], limit: number, position: (row: R) => unknown, map: (row: R) => O) {
  const has_more = rows.length > limit;
  const page = has_more ? rows.slice(0, limit) : rows;
  return {
    data: page.map(map),
    pagination: { cursor: has_more && page.length ? encodeCursor(position(page[page.length - 1])) : null, has_more },
  };
}

/** Error responses for a route's schema, by status (documented in OpenAPI). */
export function errors(...statuses: number[]) {
  const out: Record<number, typeof ErrorSchema> = {};
  for (const s of [400, 401, 403, 429, 500, ...statuses]) out[s] = ErrorSchema;
  return out;
}

/** Timestamps in API responses: ISO 8601 UTC strings. */
export const Timestamp = Type.String({ format: 'date-time' });
export const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);
export function iso(ms: number): string;
export function iso(ms: number | null): string | null;
export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
