/**
 * keyset-page.ts over an in-memory sorted key list standing in for a service's keyset list
 * (`after` exclusive, sorted, at most `limit`), and service-errors.ts's translation of core
 * errors: the page/cursor/has_more contract, filtered pages filled across batches, the per-request
 * read budget, malformed cursors, and field names in API words.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { SCAN_BATCH, SCAN_BUDGET, cursorKey, keysetPage } from '../../src/http/api/keyset-page.js';
import { encodeCursor } from '../../src/http/api/schemas.js';
import { ApiError } from '../../src/http/errors.js';
import { apiFieldName, callService, mapServiceError } from '../../src/http/api/service-errors.js';
import { ConflictError, ForbiddenError, LimitExceededError, NotFoundError, ValidationError } from '../../src/core/tenancy/errors.js';

function source(keys: string[], visible?: (k: string) => boolean) {
  const sorted = [...keys].sort();
  const calls: { after: string | undefined; limit: number }[] = [];
  return {
    calls,
    src: {
      fetch: async (after: string | undefined, limit: number) => {
        assert.ok(limit >= 1 && limit <= 1000, 'within the services\' page size');
        calls.push({ after, limit });
        return sorted.filter((k) => after === undefined || k > after).slice(0, limit);
      },
      key: (k: string) => k,
      visible,
    },
  };
}

const keys = (n: number, prefix = 'k') => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(6, '0')}`);

async function walk(src: ReturnType<typeof source>['src'], limit: number) {
  const out: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  for (;;) {
    const page = await keysetPage(src, { cursor, limit }, (k) => k);
    pages++;
    assert.ok(page.data.length <= limit);
    assert.equal(page.pagination.cursor === null, !page.pagination.has_more);
    out.push(...page.data);
    if (!page.pagination.cursor) return { out, pages };
    cursor = page.pagination.cursor;
  }
}

describe('keysetPage', () => {
  test('unfiltered: one query of limit + 1; has_more and the cursor only when more rows exist', async () => {
    const { src, calls } = source(['a', 'b', 'c', 'd', 'e']);
    const first = await keysetPage(src, { limit: 2 }, (k) => k.toUpperCase());
    assert.deepEqual(first.data, ['A', 'B']);
    assert.equal(first.pagination.has_more, true);
    assert.equal(cursorKey(first.pagination.cursor!), 'b');
    assert.deepEqual(calls, [{ after: undefined, limit: 3 }]);
    const last = await keysetPage(src, { cursor: encodeCursor('c'), limit: 2 }, (k) => k);
    assert.deepEqual(last.data, ['d', 'e']);
    assert.deepEqual(last.pagination, { cursor: null, has_more: false });
    const exact = await keysetPage(source(['a', 'b']).src, { limit: 2 }, (k) => k);
    assert.deepEqual(exact.pagination, { cursor: null, has_more: false }, 'a full last page says there is no more');
  });

  test('filtered: pages are filled across batches and walk every visible row exactly once', async () => {
    const all = keys(1200);
    const visible = (k: string) => Number(k.slice(1)) % 7 === 0;
    const { src, calls } = source(all, visible);
    const { out } = await walk(src, 10);
    assert.deepEqual(out, all.filter(visible));
    assert.ok(calls.some((c) => c.limit === SCAN_BATCH), 'later reads are whole batches');
    assert.equal(calls[0].limit, 11, 'the first read is one page');
  });

  test('the read budget bounds one request: a short page with has_more and a cursor after the last row read', async () => {
    const all = keys(SCAN_BUDGET + SCAN_BATCH * 2, 'a');
    all.push('z-visible');
    const { src, calls } = source(all, (k) => k.startsWith('z'));
    const page = await keysetPage(src, { limit: 5 }, (k) => k);
    assert.deepEqual(page.data, []);
    assert.equal(page.pagination.has_more, true);
    const resumeAfter = cursorKey(page.pagination.cursor!)!;
    const read = calls.reduce((n, c) => n + Math.min(c.limit, all.length), 0);
    assert.ok(read <= SCAN_BUDGET + SCAN_BATCH, `read ${read} rows`);
    assert.ok(resumeAfter >= all.sort()[SCAN_BUDGET - 1], 'resumes after what was read, not from the start');
    const next = await keysetPage(src, { cursor: page.pagination.cursor!, limit: 5 }, (k) => k);
    assert.deepEqual(next.data, ['z-visible']);
    assert.deepEqual(next.pagination, { cursor: null, has_more: false });
  });

  test('malformed cursors are 400 INVALID_REQUEST naming the field', async () => {
    const { src } = source(['a']);
    for (const cursor of ['%%%', Buffer.from('{"a":1}').toString('base64url'), encodeCursor(''), encodeCursor(42), encodeCursor('x'.repeat(1025))]) {
      await assert.rejects(
        () => keysetPage(src, { cursor, limit: 5 }, (k) => k),
        (err: unknown) => err instanceof ApiError && err.code === 'INVALID_REQUEST' && err.status === 400 && err.details.field === 'cursor',
        cursor,
      );
    }
  });
});

describe('mapServiceError', () => {
  test('core errors become their API codes; validation fields in API words with a JSON Pointer', () => {
    const v = mapServiceError(new ValidationError('bad name', { field: 'displayName' })) as ApiError;
    assert.ok(v instanceof ApiError);
    assert.equal(v.status, 422);
    assert.equal(v.code, 'VALIDATION_ERROR');
    assert.deepEqual(v.details, { field: 'display_name', errors: [{ path: '/display_name', message: 'bad name' }] });

    const nested = mapServiceError(new ValidationError('bad', { field: 'limits.max_users' })) as ApiError;
    assert.deepEqual(nested.details.errors, [{ path: '/limits/max_users', message: 'bad' }]);
    const part = mapServiceError(new ValidationError('bad', { field: 'address local part', reason: 'x' })) as ApiError;
    assert.equal(part.details.field, 'address');
    assert.equal(part.details.reason, 'x');
    const renamed = mapServiceError(new ValidationError('bad', { field: 'password' }), { password: 'new_password' }) as ApiError;
    assert.equal(renamed.details.field, 'new_password');

    assert.equal((mapServiceError(new NotFoundError('user "x" not found')) as ApiError).status, 404);
    assert.equal((mapServiceError(new ForbiddenError('no')) as ApiError).status, 403);
    const limit = mapServiceError(new LimitExceededError('max_users', 2, 2)) as ApiError;
    assert.equal(limit.status, 409);
    assert.deepEqual(limit.details, { limit: 'max_users', max: 2, current: 2 });
    const conflict = mapServiceError(new ConflictError('dup', { field: 'email' })) as ApiError;
    assert.deepEqual(conflict.details, { field: 'email' }, 'only validation errors carry the errors list');

    const other = new Error('boom');
    assert.equal(mapServiceError(other), other, 'anything else is passed through untouched');
  });

  test('apiFieldName and callService', async () => {
    assert.equal(apiFieldName('tenant'), 'tenant_id');
    assert.equal(apiFieldName('user'), 'user_id');
    assert.equal(apiFieldName('quotaBytes'), 'quota_bytes');
    assert.equal(apiFieldName('retentionDays'), 'retention_days');
    assert.equal(await callService(async () => 7), 7);
    await assert.rejects(() => callService(async () => { throw new NotFoundError('gone'); }), (err: unknown) => err instanceof ApiError && err.code === 'NOT_FOUND' && err.message === 'gone');
  });
});
