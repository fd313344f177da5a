/**
 * A stored message as FETCH reads it: its size, its MIME structure with byte offsets, and byte
 * ranges of its blob. Only the ranges a response needs are read (RFC 9051 §6.4.5 sections,
 * partials), so a FETCH of ENVELOPE or BODYSTRUCTURE reads header blocks, never whole messages.
 */
import { Readable } from 'node:stream';
import { NotFoundError, type MailboxStateService } from '../../../core/mailbox-state/index.js';
import type { MessageContentInfo } from '../../../core/mailbox-state/content.js';
import type { Scope } from '../../../core/scope.js';
import { encapsulatedMessages } from '../../../mail/imap/index.js';
import { parseMimeStructure, type MimePart, type MimeStructure } from '../../../mail/mime/index.js';
import { loadStructure } from '../../../mail/parts.js';
import { readAll } from '../../../store/blob/blob-store.js';

/**
 * Bytes of one header block read for ENVELOPE/BODYSTRUCTURE. The fields an ENVELOPE needs come
 * first in practice; a longer header is cut here (as the MIME parser stops interpreting headers at
 * the same size), so one hostile message cannot make a FETCH hold megabytes per message.
 */
export const MAX_HEADER_READ = 256 * 1024;

/** Header ranges closer than this are read as one range (fewer blob-store requests; S3 GETs cost). */
const COALESCE_GAP = 16 * 1024;

/** Messages whose header blocks are read at the same time by `loadMessageContents`. */
const READ_CONCURRENCY = 8;

export interface MessageContent {
  messageId: string;
  size: number;
  structure: MimeStructure;
  /** Bytes [start, end) of the message (clamped to the message). */
  read(start: number, end: number): Promise<Buffer>;
  open(start: number, end: number): Promise<Readable>;
  /** Header blocks buildBodyStructure needs (root + every encapsulated message), read once. */
  headerOf(part: MimePart): Buffer;
}

export interface LoadOptions {
  /** Read the root's and every encapsulated message's header block now (ENVELOPE, BODYSTRUCTURE). */
  withHeaders?: boolean;
}

interface Range {
  start: number;
  end: number;
}

/** Reads the header blocks of `parts` with as few range reads as the gaps between them allow. */
async function readHeaders(parts: MimePart[], size: number, read: (start: number, end: number) => Promise<Buffer>): Promise<Map<number, Buffer>> {
  const wanted = new Map<number, Range>();
  for (const part of parts) {
    const start = Math.min(part.headerStart, size);
    const end = Math.min(part.headerEnd, start + MAX_HEADER_READ, size);
    wanted.set(part.headerStart, { start, end: Math.max(start, end) });
  }
  const sorted = [...wanted.values()].sort((a, b) => a.start - b.start);
  const groups: Range[] = [];
  for (const r of sorted) {
    const last = groups[groups.length - 1];
    if (last && r.start - last.end <= COALESCE_GAP) last.end = Math.max(last.end, r.end);
    else groups.push({ ...r });
  }
  const out = new Map<number, Buffer>();
  for (const g of groups) {
    const bytes = g.end > g.start ? await read(g.start, g.end) : Buffer.alloc(0);
    for (const [key, r] of wanted) {
      if (r.start >= g.start && r.end <= g.end) out.set(key, bytes.subarray(r.start - g.start, r.end - g.start));
    }
  }
  return out;
}

async function build(state: MailboxStateService, messageId: string, info: MessageContentInfo, opts: LoadOptions): Promise<MessageContent> {
  const size = info.size;
  const open = (start: number, end: number): Promise<Readable> => {
    const to = Math.max(0, Math.min(end, size));
    const from = Math.max(0, Math.min(start, to));
    return state.openContentRange(info, from, to);
  };
  // Rows stored before structure_json existed: the blob is parsed once, streaming (bounded memory).
  const structure = await loadStructure(info.structureJson, () => open(0, size));
  // Header blocks are small: one buffered read each, no stream.
  const readSmall = (start: number, end: number) => state.readContentRange(info, start, end);
  let headers: Map<number, Buffer> | null = null;
  if (opts.withHeaders) headers = await readHeaders([structure.root, ...encapsulatedMessages(structure.root)], size, readSmall);
  return {
    messageId,
    size,
    structure,
    open,
    read: async (start, end) => readAll(await open(start, end)),
    headerOf(part) {
      const header = headers?.get(part.headerStart);
      if (header === undefined) throw new Error(`header block at ${part.headerStart} of message ${messageId} was not loaded (withHeaders)`);
      return header;
    },
  };
}

/** One message; NotFoundError when it does not exist in the scope. */
export async function loadMessageContent(state: MailboxStateService, scope: Scope, messageId: string, opts: LoadOptions = {}): Promise<MessageContent> {
  const info = (await state.getMessageContents(scope, [messageId])).get(messageId);
  if (!info) throw new NotFoundError('message', messageId);
  return build(state, messageId, info, opts);
}

/**
 * Many messages with one metadata query per 500 ids; header blocks (with `withHeaders`) are read a
 * few messages at a time. Ids that do not exist in the scope are absent from the result.
 */
export async function loadMessageContents(state: MailboxStateService, scope: Scope, messageIds: string[], opts: LoadOptions = {}): Promise<Map<string, MessageContent>> {
  const infos = await state.getMessageContents(scope, messageIds);
  const ids = [...infos.keys()];
  const out = new Map<string, MessageContent>();
  for (let i = 0; i < ids.length; i += READ_CONCURRENCY) {
    const batch = ids.slice(i, i + READ_CONCURRENCY);
    const contents = await Promise.all(batch.map((id) => build(state, id, infos.get(id)!, opts)));
    batch.forEach((id, k) => out.set(id, contents[k]));
  }
  // In the order asked for (a Map keeps insertion order), so callers can iterate it directly.
  const ordered = new Map<string, MessageContent>();
  for (const id of messageIds) {
    const content = out.get(id);
    if (content) ordered.set(id, content);
  }
  return ordered;
}

/**
 * A message held in memory as a MessageContent (unit tests, and callers that have the bytes at
 * hand): every header block is available to `headerOf`.
 */
export function inMemoryMessageContent(raw: Buffer, messageId = 'memory', structure: MimeStructure = parseMimeStructure(raw)): MessageContent {
  const clamp = (start: number, end: number) => {
    const to = Math.max(0, Math.min(end, raw.length));
    return raw.subarray(Math.max(0, Math.min(start, to)), to);
  };
  return {
    messageId,
    size: raw.length,
    structure,
    read: async (start, end) => clamp(start, end),
    open: async (start, end) => {
      const bytes = clamp(start, end);
      return Readable.from(bytes.length > 0 ? [bytes] : []);
    },
    headerOf: (part) => clamp(part.headerStart, Math.min(part.headerEnd, part.headerStart + MAX_HEADER_READ)),
  };
}
