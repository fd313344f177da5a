/**
 * `/api/v1/internal/plugins/*` (SPEC §7 "Plugin tokens"): the API plugins call with their `plt_…`
 * token — `POST /internal/plugins/callback/:message_id` (scope `callback`) to act on a stored
 * message later (the asynchronous answer to a post_receive call), and
 * `GET /internal/plugins/messages/:id` (scope `read`) to read one.
 *
 * These routes are `public` to the API's user authentication: their credential is a plugin token,
 * checked here (401 when missing, unknown, revoked, expired or without the scope), and they are
 * rate-limited per token (`api.rate_limit.plugin_per_token_per_minute`).
 *
 * Which messages a plugin reaches: those of a tenant where it may act — the tenant enabled it
 * (`tenant_plugins`), or it serves a global hook and is runnable. Any other message answers 404,
 * exactly like an id that does not exist, so a token cannot probe other tenants' ids.
 *
 * What it may do (SPEC §7 "MaiRust enforces them"): a read returns the payload filtered by the
 * approved permissions, never more; a callback that asks for ANY write the plugin was not granted
 * is refused as a whole with 403 and audited (`plugin.write_refused`) — nothing is applied.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiDeps } from '../deps.js';
import { Data, errors } from '../schemas.js';
import { ApiError } from '../../errors.js';
import { applyRateLimits, RATE_WINDOW_MS } from '../rate-limit/apply.js';
import type { HookSystem } from '../../../app/hooks.js';
import { tenantScope } from '../../../core/scope.js';
import { writeAudit } from '../../../security/audit.js';
import { HOOK_ACTIONS, HookResponseSchema } from '../../../hooks/types.js';
import { buildPayloadSource } from '../../../hooks/payload.js';
import { applyPluginWrites, ungrantedWrites, type PluginWrite } from '../../../hooks/apply.js';
import { filterPayload, type Permissions, type WriteKind } from '../../../plugins/permissions.js';
import { PLUGIN_TOKEN_PREFIX, type PluginTokenScope, type RunnablePlugin, type VerifiedPluginToken } from '../../../plugins/types.js';
import { callHooks, hookSystemOf } from './hooks.js';

const TAGS = ['plugin API'];

/** The permission that grants each write kind, for the 403's message and details. */
const PERMISSION_OF: Record<WriteKind, keyof Permissions> = {
  tags: 'write_tags',
  flags: 'write_flags',
  move: 'move_message',
  metadata: 'write_metadata',
  delete: 'delete_message',
};

const MessageIdParam = Type.Object({ message_id: Type.String({ format: 'uuid' }) }, { additionalProperties: false });
const IdParam = Type.Object({ id: Type.String({ format: 'uuid' }) }, { additionalProperties: false });

// The callback body is a hook response (the SDK's callback client sends exactly that) with every
// field optional, plus `delete`; the same bounds as HookResponseSchema. Score and SMTP fields are
// accepted and ignored: after delivery nothing is scored or answered.
const R = HookResponseSchema.properties;
const CallbackBody = Type.Object(
  {
    plugin_id: Type.Optional(R.plugin_id),
    action: Type.Optional(Type.Unsafe<(typeof HOOK_ACTIONS)[number]>({ type: 'string', enum: [...HOOK_ACTIONS], description: '`quarantine` moves the message to the quarantine folder; `tag` and `allow` apply the other fields; `reject`/`tempfail` mean nothing after delivery and are ignored.' })),
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 32, description: 'IMAP keywords to add (needs write_tags).' })),
    flags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 16, description: '\\Seen, \\Flagged, \\Answered, \\Draft (needs write_flags).' })),
    folder: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'Move every copy to this folder of its mailbox (needs move_message).' })),
    metadata: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { maxProperties: 32, description: 'Merged into the plugin\'s metadata of the message (needs write_metadata).' })),
    delete: Type.Optional(Type.Boolean({ description: 'Delete every copy (needs delete_message).' })),
    score: Type.Optional(R.score),
    smtp_code: Type.Optional(R.smtp_code),
    smtp_enhanced: Type.Optional(R.smtp_enhanced),
    smtp_message: Type.Optional(R.smtp_message),
  },
  { additionalProperties: false },
);
type CallbackBodyT = Static<typeof CallbackBody>;

const AppliedSchema = Type.Object({
  message_id: Type.String(),
  entries: Type.Integer({ description: 'Live copies of the message when the writes began.' }),
  tags: Type.Array(Type.String()),
  flags: Type.Array(Type.String()),
  moved_to: Type.Array(Type.String()),
  moved: Type.Integer(),
  quarantined: Type.Boolean(),
  metadata: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], { description: 'The plugin\'s metadata of the message after the merge.' }),
  deleted: Type.Integer(),
  ignored: Type.Array(Type.String(), { description: 'Fields that mean nothing in a callback (score, SMTP reply, reject/tempfail).' }),
});

const AttachmentSchema = Type.Object({
  filename: Type.Union([Type.String(), Type.Null()]),
  content_type: Type.String(),
  size: Type.Integer(),
  content_base64: Type.Optional(Type.String()),
  truncated: Type.Optional(Type.Boolean()),
});
const PayloadSchema = Type.Object(
  {
    hook_type: Type.String(),
    message_id: Type.String(),
    tenant_id: Type.Union([Type.String(), Type.Null()]),
    mailbox: Type.Union([Type.String(), Type.Null()]),
    envelope: Type.Object({ from: Type.String(), to: Type.Array(Type.String()) }),
    headers: Type.Optional(Type.Record(Type.String(), Type.Array(Type.String()), { description: 'With read_headers.' })),
    body: Type.Object({
      size: Type.Integer(),
      has_attachments: Type.Boolean(),
      preview: Type.Optional(Type.String({ description: 'read_body = preview: the first 4 KiB of the text.' })),
      full: Type.Optional(Type.String({ description: 'read_body = full.' })),
      attachments: Type.Optional(Type.Array(AttachmentSchema, { description: 'read_attachments ≠ none.' })),
    }),
    callback_url: Type.Union([Type.String(), Type.Null()]),
    metadata: Type.Object({ received_at: Type.String(), client_ip: Type.Union([Type.String(), Type.Null()]) }),
  },
  { description: 'The message in the hook payload shape (SPEC §6), limited to what the plugin\'s approved permissions grant.' },
);

const AUTH_NOTE =
  'Authenticate with the plugin\'s token: `Authorization: Bearer plt_…` (not a user credential). Missing, unknown, revoked or expired tokens, and tokens without the scope, are 401. ' +
  'Rate-limited per token (`api.rate_limit.plugin_per_token_per_minute`).';

/** The `plt_` bearer token of the request, verified and carrying `scope`; else 401. */
async function pluginTokenOf(request: FastifyRequest, sys: HookSystem, scope: PluginTokenScope): Promise<VerifiedPluginToken> {
  const auth = request.headers.authorization;
  const m = typeof auth === 'string' ? /^Bearer ([\x21-\x7e]{1,512})$/i.exec(auth) : null;
  if (!m || !m[1].startsWith(PLUGIN_TOKEN_PREFIX)) throw new ApiError('UNAUTHORIZED', `a plugin token is required: "Authorization: Bearer ${PLUGIN_TOKEN_PREFIX}…"`);
  const token = await sys.plugins.verifyToken(m[1]);
  if (!token) throw new ApiError('UNAUTHORIZED', 'invalid, expired or revoked plugin token');
  if (!token.scopes.includes(scope)) throw new ApiError('UNAUTHORIZED', `this plugin token lacks the "${scope}" scope`, { required_scope: scope });
  return token;
}

/** Counts the request against the token's budget; false when a 429 has been sent. */
async function withinRate(deps: ApiDeps, request: FastifyRequest, reply: FastifyReply, token: VerifiedPluginToken): Promise<boolean> {
  const limit = deps.app.config.api.rate_limit.plugin_per_token_per_minute;
  return applyRateLimits(deps.rateCounter, [{ key: `plugin-token:${token.tokenId}`, limit, windowMs: RATE_WINDOW_MS }], reply, request.log);
}

/** The verified token of each request, set by the route's preValidation hook. */
const tokens = new WeakMap<FastifyRequest, VerifiedPluginToken>();

/**
 * A route-level preValidation hook (it runs after the API's own, before body validation): an
 * unauthenticated caller learns nothing about the body's shape, and a throttled one costs no parsing work.
 */
function requireToken(deps: ApiDeps, scope: PluginTokenScope) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const token = await pluginTokenOf(request, hookSystemOf(deps), scope);
    if (!(await withinRate(deps, request, reply, token))) return reply;
    tokens.set(request, token);
  };
}

function tokenOf(request: FastifyRequest): VerifiedPluginToken {
  const t = tokens.get(request);
  if (!t) throw new ApiError('UNAUTHORIZED', 'a plugin token is required');
  return t;
}

interface Reachable {
  plugin: RunnablePlugin;
  tenantId: string;
  row: { from_addr: string | null; received_at: number | string };
}

/**
 * The message if the plugin may act on its tenant, else 404 (the same answer as a missing id).
 * The tenant is found with a system-wide lookup of the `messages` row: the token names no tenant.
 */
async function reachableMessage(deps: ApiDeps, sys: HookSystem, pluginId: string, messageId: string): Promise<Reachable> {
  const missing = new ApiError('NOT_FOUND', 'message not found');
  const row = await deps.app.db.kysely.selectFrom('messages').select(['tenant_id', 'from_addr', 'received_at']).where('id', '=', messageId).executeTakeFirst();
  if (!row) throw missing;
  const plugin = await sys.plugins.runnable(pluginId);
  if (!plugin) throw missing;
  let allowed = await sys.plugins.enabledForTenant(pluginId, row.tenant_id);
  if (!allowed) allowed = (await sys.hooks.list({ pluginId, tenantId: null })).length > 0;
  if (!allowed) throw missing;
  return { plugin, tenantId: row.tenant_id, row };
}

/** The stored message's live copies: the mailbox addresses it was delivered to (its envelope as the tenant sees it). */
async function deliveredTo(deps: ApiDeps, tenantId: string, messageId: string): Promise<string[]> {
  const rows = await deps.app.db.kysely
    .selectFrom('folder_entries')
    .innerJoin('mailboxes', 'mailboxes.id', 'folder_entries.mailbox_id')
    .select('mailboxes.address')
    .where('folder_entries.tenant_id', '=', tenantId)
    .where('folder_entries.message_id', '=', messageId)
    .where('folder_entries.deleted_at', 'is', null)
    .execute();
  return [...new Set(rows.map((r) => r.address))].sort();
}

async function readMessage(deps: ApiDeps, tenantId: string, messageId: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of await deps.app.mailboxState.openMessage(tenantScope(tenantId), messageId)) parts.push(Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array));
  return Buffer.concat(parts);
}

function writeOf(body: CallbackBodyT): { write: PluginWrite; ignored: string[] } {
  const ignored: string[] = [];
  for (const k of ['score', 'smtp_code', 'smtp_enhanced', 'smtp_message'] as const) if (body[k] !== undefined) ignored.push(k);
  if (body.action === 'reject' || body.action === 'tempfail') ignored.push(`action:${body.action}`);
  const write: PluginWrite = {};
  if (body.tags !== undefined) write.tags = body.tags;
  if (body.flags !== undefined) write.flags = body.flags;
  if (body.folder !== undefined) write.folder = body.folder;
  if (body.metadata !== undefined) write.metadata = body.metadata;
  if (body.delete === true) write.delete = true;
  if (body.action === 'quarantine') write.quarantine = true;
  return { write, ignored };
}

export async function internalPluginsRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  app.post<{ Params: Static<typeof MessageIdParam>; Body: CallbackBodyT }>(
    '/internal/plugins/callback/:message_id',
    {
      config: { public: true, ownRateLimit: true },
      preValidation: requireToken(deps, 'callback'),
      schema: {
        tags: TAGS,
        summary: 'Act on a stored message (plugin callback)',
        description:
          `Token scope \`callback\`. The body is a hook response (every field optional) plus \`delete\`. Writes need their permission (tags: write_tags, flags: write_flags, ` +
          'folder: move_message, metadata: write_metadata, delete: delete_message): a body asking for any write the plugin was not granted is refused as a whole (403, audited) ' +
          `and nothing is applied. A message of a tenant where the plugin is not enabled is 404. ${AUTH_NOTE}`,
        security: [],
        params: MessageIdParam,
        body: CallbackBody,
        response: { 200: Data(AppliedSchema), ...errors(404, 422) },
      },
    },
    async (request) => {
      const sys = hookSystemOf(deps);
      const token = tokenOf(request);
      const body = request.body;
      if (body.plugin_id !== undefined && body.plugin_id !== token.pluginId) {
        throw new ApiError('FORBIDDEN', `this token belongs to plugin ${token.pluginId}, not ${body.plugin_id}`);
      }
      const messageId = request.params.message_id;
      const { plugin, tenantId } = await reachableMessage(deps, sys, token.pluginId, messageId);
      const { write, ignored } = writeOf(body);
      const refused = ungrantedWrites(plugin.permissions, write);
      if (refused.length > 0) {
        const permissions = refused.map((k) => PERMISSION_OF[k]);
        await writeAudit(deps.app.db, {
          tenantId,
          eventType: 'plugin.write_refused',
          actor: { type: 'plugin', id: plugin.id },
          target: { type: 'message', id: messageId },
          metadata: { via: 'callback', refused: refused, permissions },
        });
        await sys.plugins.log({ pluginId: plugin.id, tenantId, level: 'warn', messageId, message: `callback refused: not granted ${permissions.join(', ')}` });
        throw new ApiError('FORBIDDEN', `the plugin is not granted ${permissions.join(', ')}; nothing was applied`, { refused, permissions });
      }
      const applied = await callHooks(() =>
        applyPluginWrites(
          { mailboxState: deps.app.mailboxState, db: deps.app.db },
          { tenantId, messageId, pluginId: plugin.id, write, quarantineFolder: deps.app.config.hooks.quarantine_folder },
        ),
      );
      return {
        data: {
          message_id: messageId,
          entries: applied.entries,
          tags: applied.tags,
          flags: applied.flags,
          moved_to: applied.movedTo,
          moved: applied.moved,
          quarantined: applied.quarantined,
          metadata: applied.metadata,
          deleted: applied.deleted,
          ignored,
        },
      };
    },
  );

  app.get<{ Params: Static<typeof IdParam> }>(
    '/internal/plugins/messages/:id',
    {
      config: { public: true, ownRateLimit: true },
      preValidation: requireToken(deps, 'read'),
      schema: {
        tags: TAGS,
        summary: 'Read a stored message (plugin API)',
        description:
          'Token scope `read`. The message in the post_receive payload shape, with exactly what the plugin\'s approved permissions grant ' +
          `(headers with read_headers, body preview/full per read_body, attachments per read_attachments). ${AUTH_NOTE}`,
        security: [],
        params: IdParam,
        response: { 200: Data(PayloadSchema), ...errors(404) },
      },
    },
    async (request) => {
      const sys = hookSystemOf(deps);
      const token = tokenOf(request);
      const messageId = request.params.id;
      const { plugin, tenantId, row } = await reachableMessage(deps, sys, token.pluginId, messageId);
      const to = await deliveredTo(deps, tenantId, messageId);
      const raw = await callHooks(() => readMessage(deps, tenantId, messageId));
      const source = buildPayloadSource({
        hookType: 'post_receive',
        messageId,
        tenantId,
        mailbox: to.length === 1 ? to[0] : null,
        envelope: { from: row.from_addr ?? '', to },
        raw,
        receivedAt: new Date(Number(row.received_at)),
        clientIp: null,
        callbackUrl: sys.callbackUrl(messageId),
      });
      return { data: filterPayload(source, plugin.permissions) };
    },
  );
}

export default internalPluginsRoutes;
