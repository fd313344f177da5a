/**
 * Messages (SPEC §11 `messages`): the filtered, keyset-paged list; one message with its decoded
 * bodies and attachment list; the raw `.eml`; single attachments; flag/tag changes; move; delete.
 *
 * A message's public id is its *folder entry* id: one stored message filed in two folders is two
 * API messages, as it is two IMAP messages. Reads are queries (src/core/messages/list.ts); every
 * change goes through the mailbox-state service (SPEC §3.4), which assigns the new MODSEQ and
 * tells IMAP sessions about it.
 *
 * Downloads (raw message, attachments) are forced downloads — `Content-Disposition: attachment`,
 * `X-Content-Type-Options: nosniff` and a sandboxing CSP — so mail content can never run as a page
 * of this origin (SPEC §10), whatever type it claims.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { ApiDeps } from '../deps.js';
import type { Principal } from '../principal.js';
import { principalOf } from '../auth-hook.js';
import { notFound, scopeOf } from '../policy.js';
import { CursorQuery, Data, DEFAULT_LIMIT, decodeCursor, encodeCursor, errors, iso, NullableTimestamp, Page, Timestamp } from '../schemas.js';
import { ApiError } from '../../errors.js';
import { guard, mailError, openableFolder, openableMailbox } from '../mail-access.js';
import {
  FLAG_FILTERS,
  getMessageDetail,
  getMessageSummary,
  isPosition,
  listMessages,
  MAX_ADDRESS_FILTER_CHARS,
  MESSAGE_SORTS,
  MessageListError,
  type MessageSort,
  type MessageSummary,
} from '../../../core/messages/list.js';
import { SearchQueryError, MAX_SEARCH_QUERY_CHARS } from '../../../core/search/query.js';
import { validateKeyword, type SystemFlag } from '../../../core/mailbox-state/flag-rules.js';
import { MAX_KEYWORD_LENGTH, MAX_KEYWORDS_PER_ENTRY } from '../../../core/mailbox-state/limits.js';
import type { Mailbox } from '../../../core/tenancy/types.js';
import { loadStructure, openPart, PartNotFoundError, readMessageView, type AttachmentInfo, type BodyText } from '../../../mail/parts.js';

// ── Vocabulary ───────────────────────────────────────────────────────────────────────────────────

/** System flags by their API names (RFC 9051 §2.3.2 minus the backslash, lower case). */
const FLAG_NAMES = ['seen', 'answered', 'flagged', 'draft', 'deleted'] as const;
type FlagName = (typeof FLAG_NAMES)[number];
const FLAG_OF: Record<FlagName, SystemFlag> = { seen: '\\Seen', answered: '\\Answered', flagged: '\\Flagged', draft: '\\Draft', deleted: '\\Deleted' };
const NAME_OF = new Map<SystemFlag, FlagName>(FLAG_NAMES.map((n) => [FLAG_OF[n], n]));

function StringEnum<T extends readonly string[]>(values: T, opts: Record<string, unknown> = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...opts });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TRASH = '\\Trash';

// ── Schemas ──────────────────────────────────────────────────────────────────────────────────────

const summaryProperties = {
  id: Type.String({ format: 'uuid', description: 'The message in this folder (a copy in another folder has another id).' }),
  folder_id: Type.String({ format: 'uuid' }),
  mailbox_id: Type.String({ format: 'uuid' }),
  uid: Type.Integer({ description: 'IMAP UID in the folder.' }),
  modseq: Type.Integer({ description: 'IMAP MODSEQ of the last change (RFC 7162).' }),
  subject: Type.Union([Type.String(), Type.Null()]),
  from: Type.Union([Type.String(), Type.Null()], { description: '"Name <address>" or the bare address.' }),
  to: Type.Array(Type.String()),
  cc: Type.Array(Type.String()),
  date: Timestamp,
  sent_at: NullableTimestamp,
  size: Type.Integer({ description: 'Bytes of the stored message.' }),
  flags: Type.Array(StringEnum(FLAG_NAMES)),
  tags: Type.Array(Type.String(), { description: 'Keywords (IMAP flag keywords).' }),
  preview: Type.Union([Type.String(), Type.Null()], { description: 'Start of the body text: the first 256 characters in lists, the whole stored preview (≤ 4 KiB) for one message.' }),
  has_attachments: Type.Boolean(),
  spam_score: Type.Union([Type.Number(), Type.Null()]),
};
const MessageSummarySchema = Type.Object(summaryProperties, {
  title: 'MessageSummary',
  description: '`date` is when the message arrived (the IMAP internal date: what lists sort and filter by); `sent_at` is its Date header.',
});

const BodySchema = Type.Union([
  Type.Object({
    content: Type.String({ description: 'Decoded to UTF-8; HTML is returned as sent (sanitise before display).' }),
    truncated: Type.Boolean({ description: 'The body was longer than 256 KiB (UTF-8) and was cut.' }),
    charset: Type.String({ description: 'The charset the body was decoded from.' }),
  }),
  Type.Null(),
]);
const AttachmentSchema = Type.Object({
  part_id: Type.String({ description: 'Use with GET /messages/{id}/attachments/{part_id}.' }),
  filename: Type.Union([Type.String(), Type.Null()]),
  content_type: Type.String(),
  size: Type.Integer({ description: 'Decoded bytes; estimated from the encoded size for base64 and quoted-printable parts.' }),
  disposition: Type.Union([Type.String(), Type.Null()]),
  content_id: Type.Union([Type.String(), Type.Null()]),
});
const MessageSchema = Type.Object(
  {
    ...summaryProperties,
    headers: Type.Object({
      subject: Type.Union([Type.String(), Type.Null()]),
      from: Type.Union([Type.String(), Type.Null()]),
      to: Type.Array(Type.String()),
      cc: Type.Array(Type.String()),
      date: NullableTimestamp,
      message_id: Type.Union([Type.String(), Type.Null()]),
      in_reply_to: Type.Union([Type.String(), Type.Null()]),
      references: Type.Array(Type.String()),
    }),
    text: BodySchema,
    html: BodySchema,
    attachments: Type.Array(AttachmentSchema),
  },
  { title: 'Message' },
);

const MessageParams = Type.Object({ id: Type.String({ format: 'uuid' }) }, { additionalProperties: false });
const PartParams = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    part: Type.String({ pattern: '^[1-9][0-9]{0,8}(\\.[1-9][0-9]{0,8}){0,31}$', description: 'MIME part specifier (`part_id` of the attachment list).' }),
  },
  { additionalProperties: false },
);

const ListQuery = Type.Object(
  {
    mailbox_id: Type.Optional(Type.String({ format: 'uuid', description: 'Default: your own first mailbox.' })),
    folder: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'A folder id, or a full folder name (e.g. `INBOX`, `Work/2024`).' })),
    q: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_SEARCH_QUERY_CHARS, description: 'Substring of subject, addresses or body text (any language, case-insensitive).' })),
    after: Type.Optional(Type.String({ format: 'date-time', description: 'Arrived at or after this time.' })),
    before: Type.Optional(Type.String({ format: 'date-time', description: 'Arrived before this time.' })),
    from: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_ADDRESS_FILTER_CHARS, description: 'Substring of the From address or name.' })),
    to: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_ADDRESS_FILTER_CHARS, description: 'Substring of a To or Cc address or name.' })),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_KEYWORD_LENGTH, description: 'Has this tag.' })),
    flag: Type.Optional(StringEnum(FLAG_FILTERS)),
    sort: Type.Optional(StringEnum(MESSAGE_SORTS, { default: 'date', description: '`date` newest first (default), `date_asc` oldest first, `size` largest first, `size_asc` smallest first.' })),
    ...CursorQuery,
  },
  { additionalProperties: false },
);

function changeSet<T extends TSchema>(item: T) {
  return Type.Object(
    {
      add: Type.Optional(Type.Array(item, { maxItems: MAX_KEYWORDS_PER_ENTRY })),
      remove: Type.Optional(Type.Array(item, { maxItems: MAX_KEYWORDS_PER_ENTRY })),
    },
    { additionalProperties: false },
  );
}
const PatchBody = Type.Object(
  {
    flags: Type.Optional(changeSet(StringEnum(FLAG_NAMES))),
    tags: Type.Optional(changeSet(Type.String({ minLength: 1, maxLength: MAX_KEYWORD_LENGTH, description: 'An IMAP atom: printable ASCII without spaces or ( ) { % * " \\ ].' }))),
  },
  { additionalProperties: false, minProperties: 1 },
);
const MoveBody = Type.Object({ folder_id: Type.String({ format: 'uuid' }) }, { additionalProperties: false });
const DeleteQuery = Type.Object(
  { permanent: Type.Optional(Type.Boolean({ default: false, description: 'Delete at once instead of moving to Trash.' })) },
  { additionalProperties: false },
);
const DeleteResult = Type.Object({
  permanent: Type.Boolean({ description: 'true: deleted (purged after the retention period); false: moved to Trash.' }),
  trash_id: Type.Union([Type.String({ format: 'uuid' }), Type.Null()], { description: 'The message id in Trash, when moved there.' }),
});

const binary = (mime: string, description: string) => ({ description, content: { [mime]: { schema: { type: 'string', format: 'binary' } } } });

// ── Mapping ──────────────────────────────────────────────────────────────────────────────────────

/**
 * List items carry a short snippet, not the whole stored preview (up to `mail.preview_bytes`): a page
 * of 50 full previews is ~100 KiB, most of a list request's cost (bench/api). GET /messages/:id has
 * the whole preview. Cut on code points, so no character is split.
 */
export const LIST_PREVIEW_CHARS = 256;

function snippet(preview: string | null): string | null {
  if (preview === null) return null;
  const chars = Array.from(preview);
  return chars.length <= LIST_PREVIEW_CHARS ? preview : chars.slice(0, LIST_PREVIEW_CHARS).join('');
}

function summaryJson(s: MessageSummary, opts: { fullPreview?: boolean } = {}) {
  return {
    id: s.id,
    folder_id: s.folderId,
    mailbox_id: s.mailboxId,
    uid: s.uid,
    modseq: s.modseq,
    subject: s.subject,
    from: s.from,
    to: s.to,
    cc: s.cc,
    date: iso(s.internalDate),
    sent_at: iso(s.date),
    size: s.size,
    flags: s.flags.map((f) => NAME_OF.get(f)!).filter(Boolean),
    tags: s.keywords,
    preview: opts.fullPreview ? s.preview : snippet(s.preview),
    has_attachments: s.hasAttachments,
    spam_score: s.spamScore,
  };
}

function attachmentJson(a: AttachmentInfo) {
  return { part_id: a.partId, filename: a.filename, content_type: a.contentType, size: a.size, disposition: a.disposition, content_id: a.contentId };
}

function bodyJson(b: BodyText | null) {
  return b === null ? null : { content: b.content, truncated: b.truncated, charset: b.charset };
}

// ── Downloads ────────────────────────────────────────────────────────────────────────────────────

const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;
const CHARSET_TOKEN = /^[A-Za-z0-9._:+-]{1,40}$/;

/**
 * `Content-Disposition: attachment` with the file name (RFC 6266 §4.3): an ASCII fallback in
 * `filename` and the exact name in `filename*` (RFC 8187). Controls, quotes, backslashes and path
 * separators are replaced, so a name can neither break the header nor suggest a directory.
 */
export function attachmentDisposition(filename: string): string {
  const clean =
    filename
      .replace(/\p{Surrogate}/gu, '\ufffd')
      .replace(/[\u0000-\u001f\u007f"\\/]/g, '_')
      .trim()
      .slice(0, 200) || 'download';
  const ascii = clean.replace(/[^\x20-\x7e]/g, '_');
  const encoded = encodeURIComponent(clean.replace(/\p{Surrogate}/gu, '\ufffd')).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/** The headers every download gets (SPEC §10): never rendered in our origin, never sniffed. */
function downloadHeaders(reply: FastifyReply, contentType: string, filename: string): void {
  reply.header('content-type', contentType);
  reply.header('content-disposition', attachmentDisposition(filename));
  reply.header('x-content-type-options', 'nosniff');
  // Replaces the API's baseline CSP: even if a browser rendered it, an HTML or SVG attachment would
  // run in a sandbox with an opaque origin, without scripts, and load nothing.
  reply.header('content-security-policy', "sandbox; default-src 'none'; frame-ancestors 'none'");
  reply.header('cache-control', 'private, no-store');
}

function mediaType(info: AttachmentInfo, charset: string | undefined): string {
  if (!MEDIA_TYPE.test(info.contentType)) return 'application/octet-stream';
  if (info.contentType.startsWith('text/') && charset && CHARSET_TOKEN.test(charset)) return `${info.contentType}; charset=${charset}`;
  return info.contentType;
}

// ── Routes ───────────────────────────────────────────────────────────────────────────────────────

/** The cursor: the sort it belongs to and the keyset position (sort key, entry id). */
function isCursor(v: unknown): v is { s: MessageSort; k: number; i: string } {
  if (typeof v !== 'object' || v === null) return false;
  const c = v as { s?: unknown; k?: unknown; i?: unknown };
  return typeof c.s === 'string' && (MESSAGE_SORTS as readonly string[]).includes(c.s) && isPosition({ key: c.k, id: c.i });
}

export default async function messagesRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const state = deps.app.mailboxState;
  const db = deps.app.db;

  /** A live message the principal may open (its mailbox: canOpenMailbox), else 404. */
  async function visibleMessage(p: Principal, id: string): Promise<{ summary: MessageSummary; mailbox: Mailbox }> {
    const summary = await getMessageSummary(db, scopeOf(p), id);
    if (!summary) throw notFound('message');
    try {
      return { summary, mailbox: await openableMailbox(deps, p, summary.mailboxId) };
    } catch (err) {
      if (err instanceof ApiError && err.code === 'NOT_FOUND') throw notFound('message');
      throw err;
    }
  }

  async function summaryById(p: Principal, id: string): Promise<MessageSummary> {
    const s = await getMessageSummary(db, scopeOf(p), id);
    if (!s) throw notFound('message');
    return s;
  }

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/messages',
    {
      config: { action: 'mail.read' },
      schema: {
        tags: ['messages'],
        summary: 'List and search messages of a mailbox',
        description: 'Filters combine with AND. Paging is by cursor; a cursor is only valid with the same `sort`.',
        querystring: ListQuery,
        response: { 200: Page(MessageSummarySchema), ...errors(404) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const scope = scopeOf(p);
      const q = request.query;
      const sort = q.sort ?? 'date';
      const cursor = decodeCursor(q.cursor, isCursor);
      if (cursor && cursor.s !== sort) throw new ApiError('INVALID_REQUEST', 'this cursor belongs to another sort order', { field: 'cursor' });

      let mailbox: Mailbox;
      let folderId: string | undefined;
      if (q.folder !== undefined && UUID.test(q.folder)) {
        const opened = await openableFolder(deps, p, q.folder);
        if (q.mailbox_id !== undefined && q.mailbox_id !== opened.mailbox.id) throw notFound('folder');
        mailbox = opened.mailbox;
        folderId = opened.folder.id;
      } else {
        mailbox = await openableMailbox(deps, p, q.mailbox_id);
        if (q.folder !== undefined) {
          const folder = await guard(state.findFolder(scope, mailbox.id, q.folder));
          if (!folder) throw notFound('folder');
          folderId = folder.id;
        }
      }

      try {
        const page = await listMessages(db, scope, {
          mailboxId: mailbox.id,
          folderId,
          q: q.q,
          after: q.after === undefined ? undefined : Date.parse(q.after),
          before: q.before === undefined ? undefined : Date.parse(q.before),
          from: q.from,
          to: q.to,
          tag: q.tag,
          flag: q.flag,
          sort,
          limit: q.limit ?? DEFAULT_LIMIT,
          position: cursor ? { key: cursor.k, id: cursor.i } : undefined,
        });
        return {
          data: page.items.map((s) => summaryJson(s)),
          pagination: { cursor: page.next ? encodeCursor({ s: sort, k: page.next.key, i: page.next.id }) : null, has_more: page.next !== null },
        };
      } catch (err) {
        if (err instanceof MessageListError) throw new ApiError('INVALID_REQUEST', err.message, { field: err.field });
        if (err instanceof SearchQueryError) throw new ApiError('INVALID_REQUEST', err.message, { field: 'q' });
        throw err;
      }
    },
  );

  app.get<{ Params: Static<typeof MessageParams> }>(
    '/messages/:id',
    {
      config: { action: 'mail.read' },
      schema: {
        tags: ['messages'],
        summary: 'Get a message with its decoded text and HTML bodies and its attachment list',
        params: MessageParams,
        response: { 200: Data(MessageSchema), ...errors(404, 503) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const scope = scopeOf(p);
      const { summary } = await visibleMessage(p, request.params.id);
      const detail = await getMessageDetail(db, scope, summary.messageId);
      if (!detail) throw notFound('message');
      const open = () => guard(state.openMessage(scope, summary.messageId));
      const structure = await loadStructure(detail.structureJson, open);
      const view = await readMessageView(structure, open);
      return {
        data: {
          ...summaryJson(summary, { fullPreview: true }),
          headers: {
            subject: summary.subject,
            from: summary.from,
            to: summary.to,
            cc: summary.cc,
            date: iso(summary.date),
            message_id: detail.messageIdHeader,
            in_reply_to: view.inReplyTo,
            references: view.references,
          },
          text: bodyJson(view.text),
          html: bodyJson(view.html),
          attachments: view.attachments.map(attachmentJson),
        },
      };
    },
  );

  app.get<{ Params: Static<typeof MessageParams> }>(
    '/messages/:id/raw',
    {
      config: { action: 'mail.read' },
      schema: {
        tags: ['messages'],
        summary: 'Download the message as stored (.eml)',
        params: MessageParams,
        response: { 200: binary('message/rfc822', 'The message exactly as stored (RFC 5322).'), ...errors(404, 503) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const { summary } = await visibleMessage(p, request.params.id);
      const stream = await guard(state.openMessage(scopeOf(p), summary.messageId));
      downloadHeaders(reply, 'message/rfc822', `${summary.id}.eml`);
      reply.header('content-length', String(summary.size));
      return reply.send(stream);
    },
  );

  app.get<{ Params: Static<typeof PartParams> }>(
    '/messages/:id/attachments/:part',
    {
      config: { action: 'mail.read' },
      schema: {
        tags: ['messages'],
        summary: 'Download one attachment (or any MIME part), decoded',
        description: 'Always a download (`Content-Disposition: attachment`), with `X-Content-Type-Options: nosniff` and a sandboxing Content-Security-Policy.',
        params: PartParams,
        response: { 200: binary('application/octet-stream', 'The part\'s content with its transfer encoding undone, served with the part\'s own content type.'), ...errors(404, 503) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const scope = scopeOf(p);
      const { summary } = await visibleMessage(p, request.params.id);
      const detail = await getMessageDetail(db, scope, summary.messageId);
      if (!detail) throw notFound('message');
      const open = () => guard(state.openMessage(scope, summary.messageId));
      const structure = await loadStructure(detail.structureJson, open);
      let opened;
      try {
        opened = await openPart(structure, request.params.part, open);
      } catch (err) {
        if (err instanceof PartNotFoundError) throw notFound('attachment');
        throw err;
      }
      const { info, charset, stream } = opened;
      const fallback = `${summary.id}-part-${info.partId}${info.contentType === 'message/rfc822' ? '.eml' : ''}`;
      downloadHeaders(reply, mediaType(info, charset), info.filename ?? fallback);
      return reply.send(stream);
    },
  );

  app.patch<{ Params: Static<typeof MessageParams>; Body: Static<typeof PatchBody> }>(
    '/messages/:id',
    {
      config: { action: 'mail.write' },
      schema: {
        tags: ['messages'],
        summary: 'Add or remove flags and tags',
        description: 'Flags are the IMAP system flags by name; tags are IMAP keywords (atoms of at most 64 characters, at most 64 per message). Each change gets a new MODSEQ.',
        params: MessageParams,
        body: PatchBody,
        response: { 200: Data(MessageSummarySchema), ...errors(404, 409, 422) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const scope = scopeOf(p);
      const { summary } = await visibleMessage(p, request.params.id);
      const { flags, tags } = request.body;
      const add = [...(flags?.add ?? []).map((f) => FLAG_OF[f]), ...(tags?.add ?? [])];
      const remove = [...(flags?.remove ?? []).map((f) => FLAG_OF[f]), ...(tags?.remove ?? [])];
      try {
        for (const t of [...(tags?.add ?? []), ...(tags?.remove ?? [])]) validateKeyword(t);
      } catch (err) {
        throw mailError(err);
      }
      const removing = new Set(remove.map((f) => f.toLowerCase()));
      const both = add.find((f) => removing.has(f.toLowerCase()));
      if (both !== undefined) throw new ApiError('VALIDATION_ERROR', `"${both.replace(/^\\/, '').toLowerCase()}" is both added and removed`, { field: flags?.add?.length ? 'flags' : 'tags' });
      if (add.length > 0) await guard(state.setFlags(scope, summary.folderId, [summary.uid], 'add', add));
      if (remove.length > 0) await guard(state.setFlags(scope, summary.folderId, [summary.uid], 'remove', remove));
      return { data: summaryJson(await summaryById(p, summary.id), { fullPreview: true }) };
    },
  );

  app.post<{ Params: Static<typeof MessageParams>; Body: Static<typeof MoveBody> }>(
    '/messages/:id/move',
    {
      config: { action: 'mail.write' },
      schema: {
        tags: ['messages'],
        summary: 'Move a message to another folder of the same mailbox',
        description: 'The message gets a new id (and IMAP UID) in the destination folder; the old id is gone.',
        params: MessageParams,
        body: MoveBody,
        response: { 200: Data(MessageSummarySchema), ...errors(404, 409, 422) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const scope = scopeOf(p);
      const { summary } = await visibleMessage(p, request.params.id);
      const { folder: target } = await openableFolder(deps, p, request.body.folder_id);
      if (target.mailboxId !== summary.mailboxId) {
        throw new ApiError('VALIDATION_ERROR', 'messages can only be moved between folders of the same mailbox', { field: 'folder_id' });
      }
      if (target.id === summary.folderId) throw new ApiError('VALIDATION_ERROR', 'the message is already in that folder', { field: 'folder_id' });
      return { data: summaryJson(await moveEntry(p, summary, target.id), { fullPreview: true }) };
    },
  );

  /** Moves one entry; returns the entry it became in `toFolderId`. */
  async function moveEntry(p: Principal, summary: MessageSummary, toFolderId: string): Promise<MessageSummary> {
    const scope = scopeOf(p);
    const result = await guard(state.move(scope, summary.folderId, [summary.uid], toFolderId));
    const moved = result.mapping[0];
    // Expunged by someone else between our read and the move.
    if (!moved) throw notFound('message');
    const entry = await guard(state.getEntry(scope, toFolderId, moved.to));
    if (!entry) throw notFound('message');
    return summaryById(p, entry.id);
  }

  app.delete<{ Params: Static<typeof MessageParams>; Querystring: Static<typeof DeleteQuery> }>(
    '/messages/:id',
    {
      config: { action: 'mail.write' },
      schema: {
        tags: ['messages'],
        summary: 'Delete a message (to Trash, or for good)',
        description: 'Moves the message to the Trash folder, unless it is already there, `permanent=true` is given, or the mailbox has no Trash folder: then it is deleted (logically; purged after the retention period).',
        params: MessageParams,
        querystring: DeleteQuery,
        response: { 200: Data(DeleteResult), ...errors(404) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const scope = scopeOf(p);
      const { summary } = await visibleMessage(p, request.params.id);
      const folder = await guard(state.getFolder(scope, summary.folderId));
      const trash = request.query.permanent || folder.specialUse === TRASH ? null : await guard(state.findSpecialFolder(scope, summary.mailboxId, TRASH));
      if (trash === null) {
        const removed = await guard(state.deleteMessages(scope, summary.folderId, [summary.uid]));
        if (removed.length === 0) throw notFound('message');
        return { data: { permanent: true, trash_id: null } };
      }
      const moved = await moveEntry(p, summary, trash.id);
      return { data: { permanent: false, trash_id: moved.id } };
    },
  );
}
