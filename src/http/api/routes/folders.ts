/**
 * Folders of a mailbox (SPEC §11 `folders`): list with counters, create, rename/(un)subscribe,
 * delete. Every change goes through the mailbox-state service (SPEC §3.4), so IMAP clients see it
 * at once (new UIDVALIDITY for re-created names, change events).
 *
 * Who may open a mailbox is `canOpenMailbox` (policy.ts): its owner, or an admin of its domain when
 * it has no owner. A mailbox or folder the caller may not open answers 404, exactly like one that
 * does not exist (SPEC §9: ids of others cannot be probed).
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { ApiDeps } from '../deps.js';
import type { Principal } from '../principal.js';
import { principalOf } from '../auth-hook.js';
import { canOpenMailbox, notFound, scopeOf } from '../policy.js';
import { CursorQuery, Data, DEFAULT_LIMIT, decodeCursor, errors, IdParam, iso, Page, pageOf, Timestamp } from '../schemas.js';
import { ApiError } from '../../errors.js';
import { INBOX, type Folder } from '../../../core/mailbox-state/index.js';
import { guard, openableFolder, openableMailbox } from '../mail-access.js';
import { folderCounts, type FolderCounts } from '../../../core/messages/list.js';

// ── Schemas ──────────────────────────────────────────────────────────────────────────────────────

/** RFC 6154 attributes in the API's spelling. */
const SPECIAL_USE_NAMES = ['sent', 'drafts', 'junk', 'trash', 'archive'] as const;

function specialUseName(attr: string | null): (typeof SPECIAL_USE_NAMES)[number] | null {
  if (!attr) return null;
  const name = attr.replace(/^\\/, '').toLowerCase();
  return (SPECIAL_USE_NAMES as readonly string[]).includes(name) ? (name as (typeof SPECIAL_USE_NAMES)[number]) : null;
}

export const FolderSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    mailbox_id: Type.String({ format: 'uuid' }),
    name: Type.String({ description: 'Full hierarchical name, "/" delimited (UTF-8); INBOX is always spelled in upper case.' }),
    special_use: Type.Union([...SPECIAL_USE_NAMES.map((n) => Type.Literal(n)), Type.Null()], { description: 'RFC 6154 special use, or null.' }),
    subscribed: Type.Boolean(),
    total: Type.Integer({ description: 'Messages in the folder.' }),
    unseen: Type.Integer({ description: 'Messages without the seen flag.' }),
    size: Type.Integer({ description: 'Sum of message sizes in bytes.' }),
    uid_validity: Type.Integer(),
    created_at: Timestamp,
  },
  { $id: 'Folder', title: 'Folder' },
);
type FolderJson = Static<typeof FolderSchema>;

const NO_COUNTS: FolderCounts = { total: 0, unseen: 0, size: 0 };

export function folderJson(f: Folder, counts: FolderCounts = NO_COUNTS): FolderJson {
  return {
    id: f.id,
    mailbox_id: f.mailboxId,
    name: f.name,
    special_use: specialUseName(f.specialUse),
    subscribed: f.subscribed,
    total: counts.total,
    unseen: counts.unseen,
    size: counts.size,
    uid_validity: f.uidValidity,
    created_at: iso(f.createdAt),
  };
}

const FolderName = Type.String({ minLength: 1, maxLength: 1024, description: 'Full name, "/" delimited; at most 255 UTF-8 bytes and 32 levels.' });

const ListQuery = Type.Object(
  {
    mailbox_id: Type.Optional(Type.String({ format: 'uuid', description: 'Default: your own first mailbox.' })),
    ...CursorQuery,
  },
  { additionalProperties: false },
);
const CreateBody = Type.Object(
  {
    mailbox_id: Type.Optional(Type.String({ format: 'uuid', description: 'Default: your own first mailbox.' })),
    name: FolderName,
  },
  { additionalProperties: false },
);
const UpdateBody = Type.Object(
  { name: Type.Optional(FolderName), subscribed: Type.Optional(Type.Boolean()) },
  { additionalProperties: false, minProperties: 1 },
);

type Id = Static<typeof IdParam>;

/** Folder list order of the service: INBOX first, then by name. The cursor is the last name. */
function isFolderCursor(v: unknown): v is { n: string } {
  return typeof v === 'object' && v !== null && typeof (v as { n?: unknown }).n === 'string';
}

function isProtected(f: Folder): boolean {
  return f.name === INBOX || f.specialUse !== null;
}

// ── Routes ───────────────────────────────────────────────────────────────────────────────────────

export default async function foldersRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const state = deps.app.mailboxState;

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/folders',
    {
      config: { action: 'mail.read' },
      schema: {
        tags: ['folders'],
        summary: 'List the folders of a mailbox with their counters',
        querystring: ListQuery,
        response: { 200: Page(FolderSchema), ...errors(404) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const mailbox = await openableMailbox(deps, p, request.query.mailbox_id);
      const limit = request.query.limit ?? DEFAULT_LIMIT;
      const after = decodeCursor(request.query.cursor, isFolderCursor);
      const [folders, counts] = await Promise.all([guard(state.listFolders(scopeOf(p), mailbox.id)), folderCounts(deps.app.db, scopeOf(p), mailbox.id)]);
      // Position after the cursor's name in the service's order (INBOX first, then by name), so a
      // folder renamed or deleted between two pages does not break paging.
      const start = !after ? 0 : after.n === INBOX ? 1 : folders.findIndex((f) => f.name !== INBOX && f.name > after.n);
      if (start < 0) return pageOf([], limit, (f: Folder) => ({ n: f.name }), (f) => folderJson(f));
      return pageOf(folders.slice(start, start + limit + 1), limit, (f) => ({ n: f.name }), (f) => folderJson(f, counts.get(f.id)));
    },
  );

  app.post<{ Body: Static<typeof CreateBody> }>(
    '/folders',
    {
      config: { action: 'mail.write' },
      schema: {
        tags: ['folders'],
        summary: 'Create a folder (missing parent folders are created too)',
        body: CreateBody,
        response: { 201: Data(FolderSchema), ...errors(404, 409, 422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const mailbox = await openableMailbox(deps, p, request.body.mailbox_id);
      const folder = await guard(state.createFolder(scopeOf(p), mailbox.id, request.body.name));
      return reply.code(201).send({ data: folderJson(folder) });
    },
  );

  app.patch<{ Params: Id; Body: Static<typeof UpdateBody> }>(
    '/folders/:id',
    {
      config: { action: 'mail.write' },
      schema: {
        tags: ['folders'],
        summary: 'Rename a folder (its subfolders move with it) or change its subscription',
        description: 'INBOX and special-use folders (sent, drafts, junk, trash, archive) cannot be renamed: 409 CONFLICT.',
        params: IdParam,
        body: UpdateBody,
        response: { 200: Data(FolderSchema), ...errors(404, 409, 422) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const scope = scopeOf(p);
      let { folder } = await openableFolder(deps, p, request.params.id);
      const { name, subscribed } = request.body;
      if (name !== undefined && name.normalize('NFC') !== folder.name) {
        if (isProtected(folder)) throw new ApiError('CONFLICT', `folder ${folder.name} is ${folder.name === INBOX ? 'INBOX' : 'a special-use folder'} and cannot be renamed`, { field: 'name' });
        folder = await guard(state.renameFolder(scope, folder.id, name));
      }
      if (subscribed !== undefined && subscribed !== folder.subscribed) folder = await guard(state.setSubscribed(scope, folder.id, subscribed));
      const counts = await folderCounts(deps.app.db, scope, folder.mailboxId);
      return { data: folderJson(folder, counts.get(folder.id)) };
    },
  );

  app.delete<{ Params: Id }>(
    '/folders/:id',
    {
      config: { action: 'mail.write' },
      schema: {
        tags: ['folders'],
        summary: 'Delete a folder and the messages in it',
        description: 'INBOX, special-use folders and folders with subfolders cannot be deleted: 409 CONFLICT. The messages are logically deleted (purged after the retention period).',
        params: IdParam,
        response: { 204: Type.Null({ description: 'Deleted.' }), ...errors(404, 409) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const { folder } = await openableFolder(deps, p, request.params.id);
      await guard(state.deleteFolder(scopeOf(p), folder.id));
      return reply.code(204).send();
    },
  );
}
