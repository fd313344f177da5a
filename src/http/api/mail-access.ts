/**
 * Access to mail through the API (folders and messages routes): resolving a mailbox or a folder
 * for the principal — its owner, or an admin of its domain when it has no owner (`canOpenMailbox`,
 * policy.ts); anything else is 404 exactly like an id that does not exist (SPEC §9) — and turning
 * mailbox-state errors into SPEC §11 errors.
 */
import type { ApiDeps } from './deps.js';
import type { Principal } from './principal.js';
import { canOpenMailbox, notFound, scopeOf } from './policy.js';
import { ApiError } from '../errors.js';
import {
  FolderExistsError,
  FolderHasChildrenError,
  FolderProtectedError,
  InvalidFlagError,
  InvalidFolderNameError,
  LimitExceededError,
  MailboxStateError,
  NotFoundError as StateNotFoundError,
  QuotaExceededError,
  type Folder,
} from '../../core/mailbox-state/index.js';
import { NotFoundError as TenancyNotFoundError } from '../../core/tenancy/errors.js';
import type { Mailbox } from '../../core/tenancy/types.js';

/** Mailbox-state errors as SPEC §11 errors; anything else is returned unchanged. */
export function mailError(err: unknown): unknown {
  if (!(err instanceof MailboxStateError)) return err;
  if (err instanceof StateNotFoundError) return notFound(err.kind);
  if (err instanceof FolderExistsError) return new ApiError('CONFLICT', err.message, { field: 'name' });
  if (err instanceof FolderHasChildrenError || err instanceof FolderProtectedError) return new ApiError('CONFLICT', err.message);
  if (err instanceof InvalidFolderNameError) return new ApiError('VALIDATION_ERROR', err.message, { field: 'name' });
  if (err instanceof InvalidFlagError) return new ApiError('VALIDATION_ERROR', err.message, { field: 'tags', value: err.flag.slice(0, 80) });
  if (err instanceof LimitExceededError) return new ApiError('CONFLICT', err.message, { limit: err.limit, max: err.max });
  if (err instanceof QuotaExceededError) return new ApiError('CONFLICT', 'the mailbox or tenant storage quota would be exceeded', { quota: err.level });
  return new ApiError('VALIDATION_ERROR', err.message);
}

/** Awaits a mailbox-state call, turning its errors into API errors. */
export async function guard<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw mailError(err);
  }
}

/**
 * The mailbox `mailboxId` if the principal may open it (else 404), or — without an id — the
 * principal's own first mailbox (by address).
 */
export async function openableMailbox(deps: ApiDeps, p: Principal, mailboxId: string | undefined): Promise<Mailbox> {
  const scope = scopeOf(p);
  if (mailboxId === undefined) {
    const [own] = await deps.app.tenancy.mailboxes.list(scope, { userId: p.user.id, limit: 1 });
    if (!own) throw new ApiError('NOT_FOUND', 'you have no mailbox of your own; pass mailbox_id', { field: 'mailbox_id' });
    return own;
  }
  let mailbox: Mailbox;
  try {
    mailbox = await deps.app.tenancy.mailboxes.get(scope, mailboxId);
  } catch (err) {
    if (err instanceof TenancyNotFoundError) throw notFound('mailbox');
    throw err;
  }
  if (!canOpenMailbox(p, mailbox)) throw notFound('mailbox');
  return mailbox;
}

/** A live folder and its mailbox, if the principal may open that mailbox (else 404). */
export async function openableFolder(deps: ApiDeps, p: Principal, folderId: string): Promise<{ folder: Folder; mailbox: Mailbox }> {
  const folder = await guard(deps.app.mailboxState.getFolder(scopeOf(p), folderId));
  try {
    return { folder, mailbox: await openableMailbox(deps, p, folder.mailboxId) };
  } catch (err) {
    if (err instanceof ApiError && err.code === 'NOT_FOUND') throw notFound('folder');
    throw err;
  }
}
