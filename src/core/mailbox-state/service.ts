/**
 * MailboxStateService — the only writer of folder contents (ARCHITECTURE §1.1, SPEC §3.4).
 *
 * SMTP delivery, IMAP, POP3, JMAP, REST and plugin callbacks all change mail through this class,
 * which assigns UIDs and MODSEQs, enforces quotas and tenancy, and publishes change events after
 * each commit. Every method takes the caller's Scope first; an id outside it is a NotFoundError,
 * indistinguishable from an id that does not exist (SPEC §9).
 *
 * The class is a thin façade: each operation lives in its own module.
 */
import type { Readable } from 'node:stream';
import type { Kysely } from 'kysely';
import type { DB } from '../../store/db/types.js';
import type { Scope } from '../scope.js';
import type { Ctx } from './context.js';
import { changesSince } from './changes.js';
import { getMessageContents, openContentRange, openMessageRange, readContentRange, type MessageContentInfo } from './content.js';
import { copy, move } from './copy-move.js';
import { append, deliver } from './deliver.js';
import { firstUnseenUid, folderStatus, getEntry, keywordsInUse, listEntries, listUids } from './entries.js';
import { deleteMessages, expunge } from './expunge.js';
import { deleteFolder, renameFolder, setSubscribed } from './folder-changes.js';
import { createDefaultFolders, createFolder, findFolder, findSpecialFolder, getFolder, listFolders } from './folders.js';
import { setFlags } from './flags.js';
import { storeAndDeliver } from './store-deliver.js';
import { discardMessage, getMessage, openMessage, storeMessage } from './messages.js';
import { entriesOfMessage, type MessageEntry } from './message-entries.js';
import { checkQuota, getQuota, getTenantQuota, tenantStorageLimitFromRow } from './quota.js';
import type {
  AppendOptions,
  Changes,
  CopyResult,
  CreateFolderOptions,
  DeliveryResult,
  DeliveryTarget,
  Entry,
  FlagOp,
  Folder,
  FolderStatus,
  ListEntriesOptions,
  MailboxStateDeps,
  MessageInfo,
  Quota,
  SetFlagsResult,
  StoreAndDeliverInput,
  StoreAndDeliverResult,
  StoreInput,
  StoredMessage,
} from './types.js';

export class MailboxStateService {
  private readonly ctx: Ctx;

  constructor(deps: MailboxStateDeps) {
    this.ctx = {
      db: deps.db,
      blobs: deps.blobs,
      bus: deps.bus,
      previewBytes: deps.previewBytes,
      nodeId: deps.nodeId,
      logger: deps.logger,
      tenantStorageLimit: deps.tenantStorageLimit ?? tenantStorageLimitFromRow,
    };
  }

  // ── Folders ────────────────────────────────────────────────────────────────────────────────
  /** Idempotent; pass the mailbox-creating transaction as `trx` to create them atomically with it. */
  createDefaultFolders(scope: Scope, mailboxId: string, trx?: Kysely<DB>): Promise<Folder[]> {
    return createDefaultFolders(this.ctx, scope, mailboxId, trx);
  }
  listFolders(scope: Scope, mailboxId: string): Promise<Folder[]> {
    return listFolders(this.ctx, scope, mailboxId);
  }
  getFolder(scope: Scope, folderId: string): Promise<Folder> {
    return getFolder(this.ctx, scope, folderId);
  }
  findFolder(scope: Scope, mailboxId: string, name: string): Promise<Folder | null> {
    return findFolder(this.ctx, scope, mailboxId, name);
  }
  findSpecialFolder(scope: Scope, mailboxId: string, specialUse: string): Promise<Folder | null> {
    return findSpecialFolder(this.ctx, scope, mailboxId, specialUse);
  }
  createFolder(scope: Scope, mailboxId: string, name: string, opts?: CreateFolderOptions): Promise<Folder> {
    return createFolder(this.ctx, scope, mailboxId, name, opts);
  }
  renameFolder(scope: Scope, folderId: string, newName: string): Promise<Folder> {
    return renameFolder(this.ctx, scope, folderId, newName);
  }
  deleteFolder(scope: Scope, folderId: string): Promise<void> {
    return deleteFolder(this.ctx, scope, folderId);
  }
  setSubscribed(scope: Scope, folderId: string, subscribed: boolean): Promise<Folder> {
    return setSubscribed(this.ctx, scope, folderId, subscribed);
  }

  // ── Storing and delivering ─────────────────────────────────────────────────────────────────
  /** Needs a tenant scope. Blob first (durable), then the message row and its text-index row. */
  storeMessage(scope: Scope, input: StoreInput): Promise<StoredMessage> {
    return storeMessage(this.ctx, scope, input);
  }
  /** One transaction for all targets; QuotaExceededError writes nothing. */
  deliver(scope: Scope, messageId: string, targets: DeliveryTarget[]): Promise<DeliveryResult[]> {
    return deliver(this.ctx, scope, messageId, targets);
  }
  /**
   * Over a blob the caller already stored: message row + entries (+ the caller's `inTransaction`
   * work, e.g. a queue job) in one transaction. Never deletes the blob (it may back other tenants' rows).
   */
  storeAndDeliver(scope: Scope, input: StoreAndDeliverInput): Promise<StoreAndDeliverResult> {
    return storeAndDeliver(this.ctx, scope, input);
  }
  /** Removes a stored message no entry points at (after a failed deliver); false when entries exist. */
  discardMessage(scope: Scope, messageId: string): Promise<boolean> {
    return discardMessage(this.ctx, scope, messageId);
  }
  append(scope: Scope, mailboxId: string, folderId: string, raw: Buffer | Readable, opts?: AppendOptions): Promise<DeliveryResult & { messageId: string; size: number }> {
    return append(this.ctx, scope, mailboxId, folderId, raw, opts);
  }

  // ── Changing entries ───────────────────────────────────────────────────────────────────────
  setFlags(scope: Scope, folderId: string, uids: number[], op: FlagOp, flags: string[], opts?: { unchangedSince?: number }): Promise<SetFlagsResult> {
    return setFlags(this.ctx, scope, folderId, uids, op, flags, opts);
  }
  copy(scope: Scope, fromFolderId: string, uids: number[], toFolderId: string): Promise<CopyResult> {
    return copy(this.ctx, scope, fromFolderId, uids, toFolderId);
  }
  move(scope: Scope, fromFolderId: string, uids: number[], toFolderId: string): Promise<CopyResult> {
    return move(this.ctx, scope, fromFolderId, uids, toFolderId);
  }
  expunge(scope: Scope, folderId: string, opts?: { uids?: number[] }): Promise<number[]> {
    return expunge(this.ctx, scope, folderId, opts);
  }
  deleteMessages(scope: Scope, folderId: string, uids: number[]): Promise<number[]> {
    return deleteMessages(this.ctx, scope, folderId, uids);
  }

  // ── Reading ────────────────────────────────────────────────────────────────────────────────
  listEntries(scope: Scope, folderId: string, opts?: ListEntriesOptions): Promise<Entry[]> {
    return listEntries(this.ctx, scope, folderId, opts);
  }
  getEntry(scope: Scope, folderId: string, uid: number): Promise<Entry | null> {
    return getEntry(this.ctx, scope, folderId, uid);
  }
  listUids(scope: Scope, folderId: string): Promise<number[]> {
    return listUids(this.ctx, scope, folderId);
  }
  /** Lowest live UID above `afterUid` without \Seen, or null (IMAP4rev1 `[UNSEEN n]`). */
  firstUnseenUid(scope: Scope, folderId: string, afterUid?: number): Promise<number | null> {
    return firstUnseenUid(this.ctx, scope, folderId, afterUid);
  }
  /** Keywords set on any live entry of the folder (IMAP FLAGS at SELECT). */
  keywordsInUse(scope: Scope, folderId: string): Promise<string[]> {
    return keywordsInUse(this.ctx, scope, folderId);
  }
  folderStatus(scope: Scope, folderId: string): Promise<FolderStatus> {
    return folderStatus(this.ctx, scope, folderId);
  }
  changesSince(scope: Scope, folderId: string, modseq: number): Promise<Changes> {
    return changesSince(this.ctx, scope, folderId, modseq);
  }
  /** Live folder entries of a stored message in every mailbox of its tenant (plugin writes act per message). */
  entriesOfMessage(scope: Scope, messageId: string): Promise<MessageEntry[]> {
    return entriesOfMessage(this.ctx, scope, messageId);
  }
  getMessage(scope: Scope, messageId: string): Promise<MessageInfo> {
    return getMessage(this.ctx, scope, messageId);
  }
  /** Blob store down → its BlobStoreUnavailableError; metadata reads keep working. */
  openMessage(scope: Scope, messageId: string): Promise<Readable> {
    return openMessage(this.ctx, scope, messageId);
  }
  /** Blob key, size, MIME structure and dates of many messages (one query per 500 ids); unknown ids are absent. */
  getMessageContents(scope: Scope, messageIds: string[]): Promise<Map<string, MessageContentInfo>> {
    return getMessageContents(this.ctx, scope, messageIds);
  }
  /** Bytes [start, end) of the raw message, streamed from the blob store (IMAP partial fetches). */
  openMessageRange(scope: Scope, messageId: string, start: number, end: number): Promise<Readable> {
    return openMessageRange(this.ctx, scope, messageId, start, end);
  }
  /** Bytes [start, end) of a message already read with `getMessageContents` (no further query). */
  openContentRange(content: Pick<MessageContentInfo, 'blobKey'>, start: number, end: number): Promise<Readable> {
    return openContentRange(this.ctx, content, start, end);
  }
  /** The same bytes in one buffer, for small reads (header blocks). */
  readContentRange(content: Pick<MessageContentInfo, 'blobKey'>, start: number, end: number): Promise<Buffer> {
    return readContentRange(this.ctx, content, start, end);
  }

  // ── Quota ──────────────────────────────────────────────────────────────────────────────────
  getQuota(scope: Scope, mailboxId: string): Promise<Quota> {
    return getQuota(this.ctx, scope, mailboxId);
  }
  getTenantQuota(scope: Scope, tenantId: string): Promise<Quota> {
    return getTenantQuota(this.ctx, scope, tenantId);
  }
  /** Early check (SMTP RCPT/SIZE): throws QuotaExceededError when `bytes` more would not fit. */
  checkQuota(scope: Scope, mailboxId: string, bytes: number): Promise<void> {
    return checkQuota(this.ctx, scope, mailboxId, bytes);
  }
}
