/**
 * Plugin permissions (SPEC §7 "Permissions"): what a plugin may read from a message and what it
 * may change. This module holds the pure rules — parsing the `[permissions]` table, the
 * dependency checks done at install, the high-risk flag shown in the UI, the diff an upgrade
 * needs approved, and the payload filter that makes sure a plugin only ever receives what it was
 * granted (SPEC §6 "Payload to plugin").
 */

import { Buffer } from 'node:buffer';
import { cutUtf8 } from '../mail/preview.js';

export type ReadBody = 'none' | 'preview' | 'full';
export type ReadAttachments = 'none' | 'metadata' | 'preview' | 'full';
export type NetworkAccess = 'none' | 'allowlist' | 'unlimited';
export type WriteKind = 'tags' | 'flags' | 'move' | 'metadata' | 'delete';

export interface Permissions {
  read_headers: boolean;
  read_body: ReadBody;
  read_attachments: ReadAttachments;
  write_tags: boolean;
  write_flags: boolean;
  move_message: boolean;
  /** Metadata is always namespaced `plugin:<id>:` by the caller; this only grants the write. */
  write_metadata: boolean;
  delete_message: boolean;
}

/** Nothing granted: a manifest without `[permissions]` gets only the envelope. */
export const NO_PERMISSIONS: Readonly<Permissions> = Object.freeze({
  read_headers: false,
  read_body: 'none',
  read_attachments: 'none',
  write_tags: false,
  write_flags: false,
  move_message: false,
  write_metadata: false,
  delete_message: false,
});

export const READ_BODY_LEVELS: readonly ReadBody[] = ['none', 'preview', 'full'];
export const READ_ATTACHMENT_LEVELS: readonly ReadAttachments[] = ['none', 'metadata', 'preview', 'full'];
const BOOLEAN_KEYS = [
  'read_headers', 'write_tags', 'write_flags', 'move_message', 'write_metadata', 'delete_message',
] as const;
const WRITE_KEYS = ['write_tags', 'write_flags', 'move_message', 'write_metadata', 'delete_message'] as const;
const WRITE_KIND_KEY: Record<WriteKind, (typeof WRITE_KEYS)[number]> = {
  tags: 'write_tags',
  flags: 'write_flags',
  move: 'move_message',
  metadata: 'write_metadata',
  delete: 'delete_message',
};

/** The size of a "preview" grant: the SPEC §2 body preview budget, in UTF-8 bytes. */
export const PREVIEW_BYTES = 4096;

export interface FieldError {
  /** Dotted path of the offending key, e.g. `permissions.read_body`. */
  path: string;
  message: string;
}

/**
 * Reads a `[permissions]` table (already parsed from TOML or JSON). Missing keys take the
 * "nothing granted" default; wrong types, unknown values and unknown keys are errors, and the
 * dependency rules of {@link validatePermissions} are applied on top.
 */
export function parsePermissions(
  input: unknown,
  path = 'permissions',
): { permissions: Permissions; errors: FieldError[] } {
  const permissions: Permissions = { ...NO_PERMISSIONS };
  const errors: FieldError[] = [];
  if (input === undefined) return { permissions, errors };
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return { permissions, errors: [{ path, message: 'must be a table' }] };
  }
  const table = input as Record<string, unknown>;
  for (const key of Object.keys(table)) {
    const value = table[key];
    const at = `${path}.${key}`;
    if ((BOOLEAN_KEYS as readonly string[]).includes(key)) {
      if (typeof value !== 'boolean') errors.push({ path: at, message: 'must be true or false' });
      else (permissions as unknown as Record<string, boolean>)[key] = value;
    } else if (key === 'read_body') {
      if (!READ_BODY_LEVELS.includes(value as ReadBody)) {
        errors.push({ path: at, message: `must be one of ${READ_BODY_LEVELS.join(', ')}` });
      } else permissions.read_body = value as ReadBody;
    } else if (key === 'read_attachments') {
      if (!READ_ATTACHMENT_LEVELS.includes(value as ReadAttachments)) {
        errors.push({ path: at, message: `must be one of ${READ_ATTACHMENT_LEVELS.join(', ')}` });
      } else permissions.read_attachments = value as ReadAttachments;
    } else {
      errors.push({ path: at, message: `unknown permission '${key}'` });
    }
  }
  if (errors.length === 0) {
    for (const message of validatePermissions(permissions)) errors.push({ path, message });
  }
  return { permissions, errors };
}

/**
 * The dependency rules of SPEC §7, checked at install: a plugin cannot sensibly act on a message
 * it cannot see, so every write needs `read_headers`, and moving a message needs at least the
 * body preview. Returns one message per broken rule (empty when valid).
 */
export function validatePermissions(p: Permissions): string[] {
  const problems: string[] = [];
  for (const key of WRITE_KEYS) {
    if (p[key] && !p.read_headers) problems.push(`${key} needs read_headers = true`);
  }
  if (p.move_message && rank(READ_BODY_LEVELS, p.read_body) < rank(READ_BODY_LEVELS, 'preview')) {
    problems.push('move_message needs read_body = "preview" or "full"');
  }
  return problems;
}

/**
 * Why a grant is high-risk (SPEC §7: `*=full`, `network=unlimited`; deleting mail is
 * irreversible, so it is flagged too). Empty when nothing stands out.
 */
export function highRiskReasons(p: Permissions, network: NetworkAccess = 'none'): string[] {
  const reasons: string[] = [];
  if (p.read_body === 'full') reasons.push('read_body = "full"');
  if (p.read_attachments === 'full') reasons.push('read_attachments = "full"');
  if (network === 'unlimited') reasons.push('network = "unlimited"');
  if (p.delete_message) reasons.push('delete_message = true');
  return reasons;
}

export function isHighRisk(p: Permissions, network: NetworkAccess = 'none'): boolean {
  return highRiskReasons(p, network).length > 0;
}

export interface PermissionChange {
  /** A permission, or `network` for the manifest's `[limits] network` (none < allowlist < unlimited). */
  permission: keyof Permissions | 'network';
  from: boolean | string;
  to: boolean | string;
}

/**
 * What `next` grants beyond `previous`: a boolean turned on or a read level raised. A non-empty
 * result means an upgrade must go back through permission review (SPEC §7 "Lifecycle");
 * narrowing a grant never needs approval.
 */
export function addedPermissions(previous: Permissions, next: Permissions): PermissionChange[] {
  const added: PermissionChange[] = [];
  if (next.read_headers && !previous.read_headers) {
    added.push({ permission: 'read_headers', from: false, to: true });
  }
  if (rank(READ_BODY_LEVELS, next.read_body) > rank(READ_BODY_LEVELS, previous.read_body)) {
    added.push({ permission: 'read_body', from: previous.read_body, to: next.read_body });
  }
  if (rank(READ_ATTACHMENT_LEVELS, next.read_attachments) > rank(READ_ATTACHMENT_LEVELS, previous.read_attachments)) {
    added.push({ permission: 'read_attachments', from: previous.read_attachments, to: next.read_attachments });
  }
  for (const key of WRITE_KEYS) {
    if (next[key] && !previous[key]) added.push({ permission: key, from: false, to: true });
  }
  return added;
}

const NETWORK_RANK: readonly NetworkAccess[] = ['none', 'allowlist', 'unlimited'];

/** A wider `[limits] network` than approved needs approval like a permission (SPEC §7 high risk). */
export function addedNetwork(previous: NetworkAccess, next: NetworkAccess): PermissionChange | null {
  return NETWORK_RANK.indexOf(next) > NETWORK_RANK.indexOf(previous) ? { permission: 'network', from: previous, to: next } : null;
}

/** Whether a response or callback may perform a write of this kind (SPEC §7: else 403 / ignored). */
export function canWrite(p: Permissions, kind: WriteKind): boolean {
  return p[WRITE_KIND_KEY[kind]] === true;
}

// ---------------------------------------------------------------------------------------------
// Payload filtering

export interface AttachmentSource {
  filename: string | null;
  content_type: string;
  size: number;
  /** The decoded attachment bytes; only read for `preview`/`full` grants. */
  content?: Uint8Array;
}

/** Everything the pipeline knows about a message, before permissions are applied. */
export interface HookPayloadSource {
  hook_type: string;
  message_id: string;
  tenant_id: string | null;
  mailbox: string | null;
  envelope: { from: string; to: string[] };
  headers: Record<string, string[]>;
  /** `text` is the decoded body text (text/plain, or the HTML rendered to text). */
  body: { text: string; size: number; has_attachments: boolean; attachments: AttachmentSource[] };
  callback_url: string | null;
  metadata: { received_at: string; client_ip: string | null };
}

export interface PayloadAttachment {
  filename: string | null;
  content_type: string;
  size: number;
  /** base64 of the first {@link PREVIEW_BYTES} bytes (`preview`) or of all of them (`full`). */
  content_base64?: string;
  truncated?: boolean;
}

/** What is sent to the plugin (SPEC §6 "Payload to plugin"). */
export interface HookPayload {
  hook_type: string;
  message_id: string;
  tenant_id: string | null;
  mailbox: string | null;
  envelope: { from: string; to: string[] };
  headers?: Record<string, string[]>;
  body: {
    size: number;
    has_attachments: boolean;
    preview?: string;
    full?: string;
    attachments?: PayloadAttachment[];
  };
  callback_url: string | null;
  metadata: { received_at: string; client_ip: string | null };
}

/**
 * Builds the payload a plugin is allowed to see. Fields are copied in explicitly (never spread),
 * so anything a later change adds to the source stays out of the payload until it is granted.
 */
export function filterPayload(source: HookPayloadSource, p: Permissions): HookPayload {
  const payload: HookPayload = {
    hook_type: source.hook_type,
    message_id: source.message_id,
    tenant_id: source.tenant_id,
    mailbox: source.mailbox,
    envelope: { from: source.envelope.from, to: [...source.envelope.to] },
    body: { size: source.body.size, has_attachments: source.body.has_attachments },
    callback_url: source.callback_url,
    metadata: { received_at: source.metadata.received_at, client_ip: source.metadata.client_ip },
  };
  if (p.read_headers) {
    const headers: Record<string, string[]> = {};
    for (const [name, values] of Object.entries(source.headers)) headers[name] = [...values];
    payload.headers = headers;
  }
  if (p.read_body === 'preview') payload.body.preview = cutUtf8(source.body.text, PREVIEW_BYTES);
  else if (p.read_body === 'full') payload.body.full = source.body.text;
  if (p.read_attachments !== 'none') {
    payload.body.attachments = source.body.attachments.map((a) => filterAttachment(a, p.read_attachments));
  }
  return payload;
}

function filterAttachment(a: AttachmentSource, level: ReadAttachments): PayloadAttachment {
  const out: PayloadAttachment = { filename: a.filename, content_type: a.content_type, size: a.size };
  if ((level === 'preview' || level === 'full') && a.content) {
    const bytes = Buffer.from(a.content.buffer, a.content.byteOffset, a.content.byteLength);
    // Attachments are bytes, not text: the preview is a byte prefix (base64 keeps it JSON-safe).
    const shown = level === 'preview' ? bytes.subarray(0, PREVIEW_BYTES) : bytes;
    out.content_base64 = shown.toString('base64');
    out.truncated = shown.length < bytes.length;
  }
  return out;
}

function rank<T>(levels: readonly T[], value: T): number {
  return levels.indexOf(value);
}
