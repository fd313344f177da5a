/**
 * Applying a plugin's writes to a STORED message (SPEC §3.1 step 7: post_receive results "are
 * applied via the mailbox-state service so IMAP/JMAP clients see them"; SPEC §7 callbacks).
 * Every change goes through MailboxStateService, which assigns MODSEQs and publishes change
 * events, so open IMAP sessions learn about new keywords, moves and deletions at once.
 *
 * A write acts on the message, i.e. on every live folder entry of it in its tenant (one per
 * recipient mailbox). Everything is validated before the first change, so bad input (an unknown
 * flag, a folder missing in one of the mailboxes, metadata over its size bound) changes nothing.
 *
 *  - tags     → IMAP keywords added (RFC 9051 §2.3.2: atoms, ≤ 64 characters, never `\`).
 *  - flags    → only \Seen \Flagged \Answered \Draft; \Deleted only through `delete` (a plugin
 *               must not leave half-deleted mail for the next EXPUNGE of some client).
 *  - folder   → each entry moved to the folder of that name in its own mailbox (RFC 6851 MOVE
 *               semantics: never visible in both or neither).
 *  - quarantine → the configured quarantine folder, else the special-use \Junk folder (RFC 6154);
 *               nothing is created.
 *  - metadata → merged into the plugin's namespace (metadata-store.ts).
 *  - delete   → every entry deleted (logical delete; purge removes the bytes later).
 *
 * Permissions are the caller's business (the manager strips ungranted writes of a response; the
 * callback API refuses them with 403); `ungrantedWrites` is the shared rule.
 */
import { canWrite, type Permissions, type WriteKind } from '../plugins/permissions.js';
import { InvalidFlagError, LimitExceededError, NotFoundError } from '../core/mailbox-state/errors.js';
import { validateKeyword } from '../core/mailbox-state/flag-rules.js';
import type { MessageEntry } from '../core/mailbox-state/message-entries.js';
import type { MailboxStateService } from '../core/mailbox-state/service.js';
import type { Folder } from '../core/mailbox-state/types.js';
import { tenantScope, type Scope } from '../core/scope.js';
import type { Database } from '../store/db/database.js';
import { mergedMetadata, PluginMetadataTooLargeError, readPluginMetadataOf, writePluginMetadata } from './metadata-store.js';

/** What a plugin asks to change (a response's fields, or a callback body). */
export interface PluginWrite {
  tags?: string[];
  flags?: string[];
  folder?: string;
  metadata?: Record<string, unknown>;
  delete?: boolean;
  /** The `quarantine` action: not a write permission of its own (SPEC §6 actions). */
  quarantine?: boolean;
}

/** Flags a plugin may set (SPEC §7 `write_flags`). */
export const PLUGIN_SETTABLE_FLAGS = ['\\Seen', '\\Flagged', '\\Answered', '\\Draft'] as const;
const SETTABLE = new Map<string, string>(PLUGIN_SETTABLE_FLAGS.map((f) => [f.toLowerCase(), f]));

export class ApplyError extends Error {
  constructor(readonly code: 'invalid' | 'not_found', message: string) {
    super(message);
    this.name = 'ApplyError';
  }
}

/** The write kinds a write asks for (empty lists and absent fields ask for nothing). */
export function requestedWrites(w: PluginWrite): WriteKind[] {
  const kinds: WriteKind[] = [];
  if (w.tags && w.tags.length > 0) kinds.push('tags');
  if (w.flags && w.flags.length > 0) kinds.push('flags');
  if (w.folder !== undefined && w.folder !== null && w.folder !== '') kinds.push('move');
  if (w.metadata && Object.keys(w.metadata).length > 0) kinds.push('metadata');
  if (w.delete === true) kinds.push('delete');
  return kinds;
}

/** The requested write kinds `perms` does not grant (SPEC §7: refused with 403 / ignored and logged). */
export function ungrantedWrites(perms: Permissions, w: PluginWrite): WriteKind[] {
  return requestedWrites(w).filter((k) => !canWrite(perms, k));
}

/** Keywords validated and de-duplicated (case-insensitively, first spelling kept); throws ApplyError. */
export function pluginKeywords(tags: readonly string[] = []): string[] {
  const out = new Map<string, string>();
  for (const t of tags) {
    try {
      validateKeyword(t);
    } catch (err) {
      if (err instanceof InvalidFlagError) throw new ApplyError('invalid', `tag ${JSON.stringify(String(t)).slice(0, 80)} is not a valid IMAP keyword: ${err.message}`);
      throw err;
    }
    if (!out.has(t.toLowerCase())) out.set(t.toLowerCase(), t);
  }
  return [...out.values()];
}

/** System flags in canonical spelling; anything but the four settable ones throws ApplyError. */
export function pluginFlags(flags: readonly string[] = []): string[] {
  const out = new Set<string>();
  for (const f of flags) {
    const canonical = typeof f === 'string' ? SETTABLE.get(f.toLowerCase()) : undefined;
    if (canonical) {
      out.add(canonical);
      continue;
    }
    const shown = JSON.stringify(String(f)).slice(0, 40);
    if (typeof f === 'string' && f.toLowerCase() === '\\deleted') {
      throw new ApplyError('invalid', `flag ${shown} cannot be set by a plugin; use delete (needs delete_message)`);
    }
    throw new ApplyError('invalid', `flag ${shown} cannot be set by a plugin; allowed: ${PLUGIN_SETTABLE_FLAGS.join(' ')} (tags go in tags)`);
  }
  return [...out];
}

/** Lenient variants for the SMTP session, where a bad tag must not cost the message: invalid items are left out. */
export function validKeywordsOnly(tags: readonly string[] = []): { keywords: string[]; refused: string[] } {
  const keywords: string[] = [];
  const refused: string[] = [];
  for (const t of tags) {
    try {
      keywords.push(...pluginKeywords([t]));
    } catch {
      refused.push(String(t));
    }
  }
  return { keywords: pluginKeywords(keywords), refused };
}

export function validFlagsOnly(flags: readonly string[] = []): { flags: string[]; refused: string[] } {
  const ok: string[] = [];
  const refused: string[] = [];
  for (const f of flags) {
    try {
      ok.push(...pluginFlags([f]));
    } catch {
      refused.push(String(f));
    }
  }
  return { flags: [...new Set(ok)], refused };
}

/**
 * The quarantine folder of a mailbox: the folder named `name` if it exists, else the special-use
 * \Junk folder (RFC 6154 §2), else null. Nothing is created: a folder appearing in a user's list
 * because a plugin said so would be a surprise.
 */
export async function quarantineFolderOf(mailboxState: MailboxStateService, scope: Scope, mailboxId: string, name: string | undefined): Promise<Folder | null> {
  if (name) {
    const named = await mailboxState.findFolder(scope, mailboxId, name);
    if (named) return named;
  }
  return mailboxState.findSpecialFolder(scope, mailboxId, '\\Junk');
}

export interface ApplyDeps {
  mailboxState: MailboxStateService;
  db: Database;
}

export interface ApplyInput {
  tenantId: string;
  messageId: string;
  pluginId: string;
  write: PluginWrite;
  /** Folder name for `quarantine` (config `hooks.quarantine_folder`, or the plugin's folder); falls back to \Junk. */
  quarantineFolder?: string;
}

/** What was applied. */
export interface AppliedWrites {
  /** Live entries of the message when the writes began. */
  entries: number;
  tags: string[];
  flags: string[];
  /** Folder names the entries were moved into (one per distinct target; empty when nothing moved). */
  movedTo: string[];
  /** Entries moved. */
  moved: number;
  quarantined: boolean;
  /** The plugin's metadata object after the merge, or null when none was written. */
  metadata: Record<string, unknown> | null;
  /** Entries deleted. */
  deleted: number;
}

function group<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    const list = out.get(k);
    if (list) list.push(it);
    else out.set(k, [it]);
  }
  return out;
}

/** Validates everything, then applies: metadata, keywords and flags, the move, the deletion. */
export async function applyPluginWrites(deps: ApplyDeps, input: ApplyInput): Promise<AppliedWrites> {
  const { mailboxState } = deps;
  const { write } = input;
  const scope = tenantScope(input.tenantId);

  // ── Validation: nothing changes unless all of it is acceptable ──────────────────────────────
  const keywords = pluginKeywords(write.tags ?? []);
  const flags = pluginFlags(write.flags ?? []);
  const folderName = typeof write.folder === 'string' && write.folder !== '' ? write.folder : undefined;
  if (write.metadata !== undefined && (write.metadata === null || typeof write.metadata !== 'object' || Array.isArray(write.metadata))) {
    throw new ApplyError('invalid', 'metadata must be a JSON object');
  }
  let entries: MessageEntry[];
  try {
    entries = await mailboxState.entriesOfMessage(scope, input.messageId);
  } catch (err) {
    if (err instanceof NotFoundError) throw new ApplyError('not_found', `message ${input.messageId} not found`);
    throw err;
  }
  const metadata = write.metadata && Object.keys(write.metadata).length > 0 ? write.metadata : null;
  if (metadata) {
    try {
      mergedMetadata(await readPluginMetadataOf(deps.db.kysely, input.tenantId, input.messageId, input.pluginId), metadata, input.pluginId);
    } catch (err) {
      if (err instanceof PluginMetadataTooLargeError) throw new ApplyError('invalid', err.message);
      throw err;
    }
  }
  // The destination per mailbox, resolved up front so a folder missing in one mailbox moves nothing anywhere.
  const destination = new Map<string, Folder>();
  if (!write.delete && (folderName || write.quarantine)) {
    for (const mailboxId of new Set(entries.map((e) => e.mailboxId))) {
      const folder = write.quarantine
        ? await quarantineFolderOf(mailboxState, scope, mailboxId, folderName ?? input.quarantineFolder)
        : await mailboxState.findFolder(scope, mailboxId, folderName!);
      if (!folder) {
        const what = write.quarantine ? `quarantine folder ${JSON.stringify(folderName ?? input.quarantineFolder ?? 'Junk')} (nor a \\Junk folder)` : `folder ${JSON.stringify(folderName)}`;
        throw new ApplyError('not_found', `${what} does not exist in mailbox ${mailboxId}`);
      }
      destination.set(mailboxId, folder);
    }
  }

  const applied: AppliedWrites = { entries: entries.length, tags: [], flags: [], movedTo: [], moved: 0, quarantined: false, metadata: null, deleted: 0 };

  // ── Changes ──────────────────────────────────────────────────────────────────────────────────
  if (metadata) {
    try {
      applied.metadata = await writePluginMetadata(deps.db, { tenantId: input.tenantId, messageId: input.messageId, pluginId: input.pluginId, data: metadata });
    } catch (err) {
      // A concurrent writer may have grown the object since the check above.
      if (err instanceof PluginMetadataTooLargeError) throw new ApplyError('invalid', err.message);
      throw err;
    }
  }

  const byFolder = group(entries, (e) => e.folderId);
  if (write.delete) {
    for (const [folderId, list] of byFolder) {
      applied.deleted += (await mailboxState.deleteMessages(scope, folderId, list.map((e) => e.uid))).length;
    }
    return applied;
  }

  const addFlags = [...flags, ...keywords];
  if (addFlags.length > 0 && entries.length > 0) {
    for (const [folderId, list] of byFolder) {
      try {
        await mailboxState.setFlags(scope, folderId, list.map((e) => e.uid), 'add', addFlags);
      } catch (err) {
        // Too many keywords on an entry (mailbox-state's per-entry bound): the plugin's input is at fault.
        if (err instanceof LimitExceededError || err instanceof InvalidFlagError) throw new ApplyError('invalid', err.message);
        throw err;
      }
    }
    applied.tags = keywords;
    applied.flags = flags;
  }

  if (destination.size > 0) {
    const names = new Set<string>();
    for (const [folderId, list] of byFolder) {
      const to = destination.get(list[0].mailboxId)!;
      if (to.id === folderId) continue;
      const r = await mailboxState.move(scope, folderId, list.map((e) => e.uid), to.id);
      applied.moved += r.mapping.length;
      names.add(to.name);
    }
    applied.movedTo = [...names];
    applied.quarantined = write.quarantine === true;
  }
  return applied;
}
