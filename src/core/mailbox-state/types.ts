/**
 * Public types of the mailbox-state service (the only writer of folder contents, ARCHITECTURE §1.1).
 *
 * Flag vocabulary (RFC 9051 §2.3.2): a *flag* is either a *system flag* (\Seen, \Answered,
 * \Flagged, \Deleted, \Draft) or a *keyword* (any atom, e.g. `$Forwarded`, `work`). Results that
 * an IMAP client sees as FLAGS carry both in `flags`; `keywords` repeats the keywords alone for
 * callers that show them as tags (REST, web UI).
 */
import type { Readable } from 'node:stream';
import type { Kysely } from 'kysely';
import type { DB } from '../../store/db/types.js';
import type { Logger } from 'pino';
import type { Database } from '../../store/db/database.js';
import type { BlobStore } from '../../store/blob/blob-store.js';
import type { ChangeBus } from '../../store/events/change-bus.js';
import type { MessageMeta } from '../../mail/extract.js';

export type { MessageMeta };

/** Resolves a tenant's storage limit in bytes (0 = unlimited), e.g. from its plan (see quota.ts). */
export type TenantStorageLimit = (tenant: { id: string; plan: string; limitsJson: string }) => number;

export interface MailboxStateDeps {
  db: Database;
  blobs: BlobStore;
  bus: ChangeBus;
  /** Body preview size handed to the extractor (config mail.preview_bytes). */
  previewBytes?: number;
  /** Origin stamped on published change events. */
  nodeId?: string;
  logger?: Logger;
  /** Default: `limits_json.storage_bytes` of the tenant row, else unlimited. */
  tenantStorageLimit?: TenantStorageLimit;
}

export interface Folder {
  id: string;
  tenantId: string;
  mailboxId: string;
  /** Full hierarchical name, "/" delimited; "INBOX" always spelled in upper case. */
  name: string;
  /** RFC 6154 attribute (\Sent, \Drafts, \Junk, \Trash, \Archive) or null. */
  specialUse: string | null;
  uidValidity: number;
  uidNext: number;
  highestModseq: number;
  subscribed: boolean;
  createdAt: number;
}

export interface CreateFolderOptions {
  specialUse?: string | null;
  /** Default true (web UI expectation); the IMAP layer passes false for CREATE (RFC 9051 §6.3.4). */
  subscribed?: boolean;
}

export interface Entry {
  id: string;
  folderId: string;
  mailboxId: string;
  messageId: string;
  uid: number;
  modseq: number;
  /** System flags and keywords, as IMAP FLAGS shows them. */
  flags: string[];
  keywords: string[];
  internalDate: number;
  size: number;
  /** Set once the entry is expunged/deleted; only returned with includeDeleted. */
  deletedAt: number | null;
}

export interface ListEntriesOptions {
  uids?: number[];
  includeDeleted?: boolean;
  /** Default 1000, maximum 10000. */
  limit?: number;
  /** Only entries with uid > afterUid (paging). */
  afterUid?: number;
}

export interface StoreInput {
  raw: Buffer | Readable;
  /** Parsed metadata; extracted from `raw` when absent (a stream is then buffered once). */
  meta?: MessageMeta;
  receivedAt?: number;
  /** The Authentication-Results header value (SPF/DKIM/DMARC) computed by the pipeline. */
  authResults?: string;
  spamScore?: number;
  /** MIME structure with byte offsets into the stored bytes (JSON of src/mail/mime's MimeStructure). */
  structureJson?: string;
}

/**
 * storeAndDeliver: a blob the caller already stored (durably) becomes a message row of the scope's
 * tenant, delivered to `targets`, in one transaction. One blob may back the rows of several
 * tenants (one SMTP message to recipients in different tenants, SPEC §3.1 step 6), so this never
 * deletes the blob: the caller owns it.
 */
export interface StoreAndDeliverInput {
  blob: { key: string; size: number; sha256: string };
  /** Metadata of the stored bytes (the pipeline extracts it once for every tenant). */
  meta: MessageMeta;
  structureJson?: string;
  receivedAt?: number;
  authResults?: string;
  spamScore?: number;
  /** May be empty: the row alone (e.g. mail that is only relayed, referenced by a queue job). */
  targets: DeliveryTarget[];
  /**
   * Runs inside the same transaction after the rows are written, e.g. `queue.enqueueIn(trx, …)`,
   * so jobs that refer to the message commit or roll back with it. Must use `trx` only.
   */
  inTransaction?: (trx: Kysely<DB>, messageId: string) => Promise<void>;
}

export interface StoreAndDeliverResult {
  messageId: string;
  results: DeliveryResult[];
}

export interface StoredMessage {
  id: string;
  blobKey: string;
  size: number;
  sha256: string;
}

export interface DeliveryTarget {
  mailboxId: string;
  folderId?: string;
  /** Used when folderId is absent; default INBOX. An unknown name falls back to INBOX. */
  folderName?: string;
  flags?: string[];
  keywords?: string[];
  internalDate?: number;
}

export interface DeliveryResult {
  mailboxId: string;
  folderId: string;
  uid: number;
  modseq: number;
  /** With `uid`, what IMAP APPENDUID reports (RFC 4315 §3). */
  uidValidity: number;
}

export interface AppendOptions {
  flags?: string[];
  keywords?: string[];
  internalDate?: number;
}

export type FlagOp = 'add' | 'remove' | 'replace';

export interface FlagState {
  uid: number;
  modseq: number;
  flags: string[];
}

export interface SetFlagsResult {
  /** Entries whose flags changed, with their new MODSEQ. Entries already in the wanted state are not listed. */
  updated: FlagState[];
  /** UIDs not changed because their MODSEQ was above UNCHANGEDSINCE (RFC 7162 §3.1.3, MODIFIED). */
  modifiedUids: number[];
}

export interface CopyResult {
  /** UIDVALIDITY of the destination folder (RFC 4315 COPYUID). */
  uidValidity: number;
  /** Source UID → new destination UID, in ascending source order. Missing/expunged source UIDs are skipped. */
  mapping: { from: number; to: number }[];
}

export interface FolderStatus {
  messages: number;
  unseen: number;
  /** Entries flagged \Deleted (RFC 9051 §6.3.11 STATUS DELETED). */
  deleted: number;
  /** IMAP4rev2 has no \Recent (RFC 9051 Appendix E); kept for IMAP4rev1 STATUS. */
  recent: 0;
  uidNext: number;
  uidValidity: number;
  highestModseq: number;
  /** Sum of message sizes (RFC 8438 STATUS=SIZE). */
  size: number;
}

export interface Changes {
  highestModseq: number;
  /** Live entries whose MODSEQ is above the one asked for (new or flag-changed). */
  changed: FlagState[];
  /** UIDs expunged since then (RFC 7162 §3.2.10 VANISHED (EARLIER)). */
  expunged: number[];
}

export interface Quota {
  usedBytes: number;
  /** 0 = unlimited. */
  limitBytes: number;
}

export interface MessageInfo {
  id: string;
  tenantId: string;
  blobKey: string;
  size: number;
  sha256: string;
  messageIdHeader: string | null;
  subject: string | null;
  from: string | null;
  to: string[];
  cc: string[];
  date: number | null;
  preview: string | null;
  hasAttachments: boolean;
  attachments: { filename: string | null; contentType: string; size: number }[];
  authResults: string | null;
  spamScore: number | null;
  receivedAt: number;
}
