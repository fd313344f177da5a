/**
 * Typed errors of the mailbox-state service. Each carries a stable `code` so protocol layers can
 * map it without string matching: NOT_FOUND → IMAP NO [NONEXISTENT] / HTTP 404, QUOTA_EXCEEDED →
 * SMTP 452 4.2.2 / IMAP NO [OVERQUOTA] (RFC 9051 §7.1) / HTTP 507, and so on.
 */

export type MailboxStateErrorCode =
  | 'NOT_FOUND'
  | 'QUOTA_EXCEEDED'
  | 'INVALID_FOLDER_NAME'
  | 'FOLDER_EXISTS'
  | 'FOLDER_HAS_CHILDREN'
  | 'FOLDER_PROTECTED'
  | 'INVALID_FLAG'
  | 'INVALID_SPECIAL_USE'
  | 'LIMIT_EXCEEDED';

export abstract class MailboxStateError extends Error {
  abstract readonly code: MailboxStateErrorCode;
}

export type NotFoundKind = 'mailbox' | 'folder' | 'message' | 'tenant';

/**
 * The id does not exist *or* belongs to another tenant. Both cases look identical on purpose:
 * a tenant must not be able to infer that another tenant's id exists (SPEC §9).
 */
export class NotFoundError extends MailboxStateError {
  readonly code = 'NOT_FOUND' as const;
  constructor(readonly kind: NotFoundKind, readonly id: string) {
    super(`${kind} not found: ${id}`);
    this.name = 'NotFoundError';
  }
}

/** Storing would exceed the mailbox quota or the tenant's storage limit (SPEC §4 "Quotas"). */
export class QuotaExceededError extends MailboxStateError {
  readonly code = 'QUOTA_EXCEEDED' as const;
  constructor(
    readonly level: 'mailbox' | 'tenant',
    /** The mailbox (level 'mailbox') or tenant (level 'tenant') whose limit would be exceeded. */
    readonly id: string,
    readonly usedBytes: number,
    readonly limitBytes: number,
    readonly requestedBytes: number,
  ) {
    super(`${level} ${id} is over quota: ${usedBytes} + ${requestedBytes} bytes > limit ${limitBytes} bytes`);
    this.name = 'QuotaExceededError';
  }
}

export class InvalidFolderNameError extends MailboxStateError {
  readonly code = 'INVALID_FOLDER_NAME' as const;
  constructor(readonly folderName: string, reason: string) {
    super(`invalid folder name ${JSON.stringify(folderName).slice(0, 100)}: ${reason}`);
    this.name = 'InvalidFolderNameError';
  }
}

/** RFC 9051 §6.3.4/§6.3.6: creating or renaming to an existing name is an error (IMAP [ALREADYEXISTS]). */
export class FolderExistsError extends MailboxStateError {
  readonly code = 'FOLDER_EXISTS' as const;
  constructor(readonly folderName: string) {
    super(`folder already exists: ${folderName}`);
    this.name = 'FolderExistsError';
  }
}

/**
 * RFC 9051 §6.3.5: a server that does not let a folder with inferiors be deleted SHOULD refuse
 * with the HASCHILDREN response code. We refuse rather than keep a \Noselect placeholder.
 */
export class FolderHasChildrenError extends MailboxStateError {
  readonly code = 'FOLDER_HAS_CHILDREN' as const;
  constructor(readonly folderName: string) {
    super(`folder ${folderName} has subfolders; delete them first`);
    this.name = 'FolderHasChildrenError';
  }
}

/** INBOX and the special-use folders cannot be deleted; INBOX cannot be renamed (yet). */
export class FolderProtectedError extends MailboxStateError {
  readonly code = 'FOLDER_PROTECTED' as const;
  constructor(readonly folderName: string, reason: string) {
    super(`folder ${folderName}: ${reason}`);
    this.name = 'FolderProtectedError';
  }
}

export class InvalidFlagError extends MailboxStateError {
  readonly code = 'INVALID_FLAG' as const;
  constructor(readonly flag: string, reason: string) {
    super(`invalid flag ${JSON.stringify(flag).slice(0, 80)}: ${reason}`);
    this.name = 'InvalidFlagError';
  }
}

/** Not one of the special-use attributes a real folder may carry (RFC 6154 §2; IMAP [USEATTR]). */
export class InvalidSpecialUseError extends MailboxStateError {
  readonly code = 'INVALID_SPECIAL_USE' as const;
  constructor(readonly specialUse: string, allowed: readonly string[]) {
    super(`unsupported special-use attribute ${JSON.stringify(specialUse).slice(0, 40)} (allowed: ${allowed.join(' ')})`);
    this.name = 'InvalidSpecialUseError';
  }
}

/** A documented service limit (folders per mailbox, keywords per message, page size...) was hit. */
export class LimitExceededError extends MailboxStateError {
  readonly code = 'LIMIT_EXCEEDED' as const;
  constructor(readonly limit: string, readonly max: number, detail?: string) {
    super(`${limit} limit of ${max} exceeded${detail ? `: ${detail}` : ''}`);
    this.name = 'LimitExceededError';
  }
}
