/** Row → public type mapping (pure). */
import type { MessagesTable } from '../../store/db/types.js';
import type { EntryRow, FolderRow } from './db.js';
import { imapFlags, parseList, storedFlagSet } from './flag-rules.js';
import type { Entry, FlagState, Folder, MessageInfo } from './types.js';

export function toFolder(row: FolderRow): Folder {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mailboxId: row.mailbox_id,
    name: row.name,
    specialUse: row.special_use,
    uidValidity: Number(row.uid_validity),
    uidNext: Number(row.uid_next),
    highestModseq: Number(row.highest_modseq),
    subscribed: Number(row.subscribed) === 1,
    createdAt: Number(row.created_at),
  };
}

export function toEntry(row: EntryRow): Entry {
  const set = storedFlagSet(row.flags_json, row.keywords_json);
  return {
    id: row.id,
    folderId: row.folder_id,
    mailboxId: row.mailbox_id,
    messageId: row.message_id,
    uid: Number(row.uid),
    modseq: Number(row.modseq),
    flags: imapFlags(set),
    keywords: set.keywords,
    internalDate: Number(row.internal_date),
    size: Number(row.size),
    deletedAt: row.deleted_at === null ? null : Number(row.deleted_at),
  };
}

export function toFlagState(row: Pick<EntryRow, 'uid' | 'modseq' | 'flags_json' | 'keywords_json'>): FlagState {
  return { uid: Number(row.uid), modseq: Number(row.modseq), flags: imapFlags(storedFlagSet(row.flags_json, row.keywords_json)) };
}

function parseAttachments(json: string): MessageInfo['attachments'] {
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? (v as MessageInfo['attachments']) : [];
  } catch {
    return [];
  }
}

export function toMessageInfo(row: MessagesTable): MessageInfo {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    blobKey: row.blob_key,
    size: Number(row.size),
    sha256: row.sha256,
    messageIdHeader: row.message_id_header,
    subject: row.subject,
    from: row.from_addr,
    to: parseList(row.to_addrs),
    cc: parseList(row.cc_addrs),
    date: row.date_header === null ? null : Number(row.date_header),
    preview: row.preview,
    hasAttachments: Number(row.has_attachments) === 1,
    attachments: parseAttachments(row.attachments_json),
    authResults: row.auth_results,
    spamScore: row.spam_score === null ? null : Number(row.spam_score),
    receivedAt: Number(row.received_at),
  };
}
