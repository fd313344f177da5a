/**
 * One `* n FETCH (…)` response (RFC 9051 §7.5.2), shared by FETCH and UID FETCH (not a command).
 *
 * Every item is prepared before the first byte is written, so a part that does not exist or an
 * unknown transfer encoding is found while nothing of the response is out yet; section bodies are
 * then streamed from the blob behind their literal header, never held in memory (BINARY, which has
 * to decode, and HEADER.FIELDS, which is as small as the header, are the exceptions).
 */
import { Readable } from 'node:stream';
import type { Entry } from '../../../core/mailbox-state/index.js';
import { buildBodyStructure, buildEnvelope } from '../../../mail/imap/index.js';
import { encodeValues, flagList, formatInternalDate, isAtomSafe, literalPrefix } from '../encoder/index.js';
import type { ImapValue } from '../encoder/types.js';
import { fetchBinary, fetchSection, binarySize, NoSuchPartError, type MessageContent } from '../fetch/index.js';
import type { FetchItem, FetchRequest, SectionSpec } from '../parser/types.js';
import type { CommandContext } from '../session/types.js';

export interface FetchPlan {
  items: FetchItem[];
  /** Any item reads the message (sections, ENVELOPE, BODYSTRUCTURE…). */
  needsContent: boolean;
  /** ENVELOPE / BODYSTRUCTURE / BODY: header blocks are read with the content. */
  needsHeaders: boolean;
  /** BODY[…] / BINARY[…] / RFC822 / RFC822.TEXT without PEEK set \Seen (RFC 9051 §6.4.5). */
  setsSeen: boolean;
  /** UID FETCH, a requested UID, or CONDSTORE on (RFC 7162 §3.1: UID and MODSEQ in every FETCH). */
  withUid: boolean;
  withModseq: boolean;
  withFlags: boolean;
}

const CONTENT_KINDS = new Set(['ENVELOPE', 'BODYSTRUCTURE', 'BODY-STRUCTURE-SHORT', 'BODY', 'BINARY', 'BINARY.SIZE', 'RFC822', 'RFC822.HEADER', 'RFC822.TEXT']);
const HEADER_KINDS = new Set(['ENVELOPE', 'BODYSTRUCTURE', 'BODY-STRUCTURE-SHORT']);

export function planFetch(request: FetchRequest, opts: { byUid: boolean; condstore: boolean }): FetchPlan {
  const { items } = request;
  const has = (kind: string) => items.some((i) => i.kind === kind);
  return {
    items,
    needsContent: items.some((i) => CONTENT_KINDS.has(i.kind)),
    needsHeaders: items.some((i) => HEADER_KINDS.has(i.kind)),
    setsSeen: items.some((i) => ((i.kind === 'BODY' || i.kind === 'BINARY') && !i.peek) || i.kind === 'RFC822' || i.kind === 'RFC822.TEXT'),
    withUid: opts.byUid || opts.condstore || has('UID'),
    // CHANGEDSINCE implies MODSEQ (RFC 7162 §3.1.4.1).
    withModseq: opts.condstore || has('MODSEQ') || request.changedSince !== undefined,
    withFlags: has('FLAGS'),
  };
}

/** `HEADER.FIELDS (SUBJECT FROM)`, `1.2.MIME`, `` (whole message) as the response names it. */
export function sectionText(spec: SectionSpec): string {
  const part = spec.part.join('.');
  if (!spec.text) return part;
  let text: string = spec.text;
  if (spec.fields) {
    // Field names are echoed; one that is no atom goes as a quoted string.
    const names = spec.fields.map((f) => (isAtomSafe(f) ? f : encodeValues([f], { utf8: false }).toString('latin1')));
    text += ` (${names.join(' ')})`;
  }
  return part ? `${part}.${text}` : text;
}

/** A piece of a response: encoded text, or a literal streamed from the blob. */
type Piece = { text: Buffer } | { head: string; size: number; stream: Readable; source: Readable };

/**
 * Exactly `size` bytes from `source`, which has been read up to its first chunk already: a blob
 * that is missing or unreadable then fails here, before the literal header is written, and the
 * connection stays usable. A short read later (a blob shorter than its metadata) fails the stream
 * rather than desynchronising the client.
 */
async function primed(source: Readable, size: number): Promise<Readable> {
  const it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let first: IteratorResult<Buffer>;
  try {
    first = size > 0 ? await it.next() : { done: true, value: undefined };
  } catch (err) {
    source.destroy();
    throw err;
  }
  async function* gen() {
    let left = size;
    try {
      let step = first;
      while (!step.done && left > 0) {
        const piece = step.value.length > left ? step.value.subarray(0, left) : step.value;
        left -= piece.length;
        yield piece;
        if (left > 0) step = await it.next();
      }
    } finally {
      source.destroy();
    }
    if (left > 0) throw new Error(`message content ended ${left} bytes early`);
  }
  return Readable.from(gen(), { objectMode: false });
}

function destroyAll(pieces: Piece[]): void {
  // The source too: a generator that never started does not run its `finally`.
  for (const p of pieces) {
    if ('stream' in p) {
      p.stream.destroy();
      p.source.destroy();
    }
  }
}

/**
 * Prepares and writes the response for one message. `content` is null when no item needs it.
 * `flagsChanged`: this FETCH just set \Seen, so FLAGS is included even if not asked for.
 */
export async function writeFetchResponse(
  ctx: CommandContext,
  seq: number,
  entry: Entry,
  content: MessageContent | null,
  plan: FetchPlan,
  flagsChanged: boolean,
): Promise<void> {
  const opts = { utf8: ctx.session.utf8 };
  const pieces: Piece[] = [];
  const add = (...values: ImapValue[]) => pieces.push({ text: encodeValues(values, opts) });
  const addLiteral = async (head: string, open: () => Promise<{ size: number; open(): Promise<Readable> }>) => {
    let body;
    try {
      body = await open();
    } catch (err) {
      // A part the message does not have: NIL, as for any absent section (RFC 9051 §6.4.5).
      if (err instanceof NoSuchPartError) return add({ raw: head }, null);
      throw err;
    }
    const source = await body.open();
    pieces.push({ head, size: body.size, stream: await primed(source, body.size), source });
  };

  try {
    if (plan.withUid) add({ atom: 'UID' }, entry.uid);
    for (const item of plan.items) {
      switch (item.kind) {
        case 'UID':
          break; // already first
        case 'FLAGS':
          add({ atom: 'FLAGS' }, flagList(entry.flags));
          break;
        case 'MODSEQ':
          break; // with the other MODSEQ below
        case 'INTERNALDATE':
          add({ atom: 'INTERNALDATE' }, formatInternalDate(entry.internalDate));
          break;
        case 'RFC822.SIZE':
          add({ atom: 'RFC822.SIZE' }, content?.size ?? entry.size);
          break;
        case 'ENVELOPE':
          add({ atom: 'ENVELOPE' }, buildEnvelope(content!.headerOf(content!.structure.root)));
          break;
        case 'BODYSTRUCTURE':
          add({ atom: 'BODYSTRUCTURE' }, buildBodyStructure(content!.structure.root, (p) => content!.headerOf(p), true));
          break;
        case 'BODY-STRUCTURE-SHORT':
          add({ atom: 'BODY' }, buildBodyStructure(content!.structure.root, (p) => content!.headerOf(p), false));
          break;
        case 'RFC822':
          await addLiteral('RFC822', () => fetchSection(content!, { part: [] }));
          break;
        case 'RFC822.HEADER':
          await addLiteral('RFC822.HEADER', () => fetchSection(content!, { part: [], text: 'HEADER' }));
          break;
        case 'RFC822.TEXT':
          await addLiteral('RFC822.TEXT', () => fetchSection(content!, { part: [], text: 'TEXT' }));
          break;
        case 'BODY': {
          // The response names the origin octet only: `BODY[]<0>` (RFC 9051 §7.5.2).
          const head = `BODY[${sectionText(item.section)}]${item.partial ? `<${item.partial.start}>` : ''}`;
          await addLiteral(head, () => fetchSection(content!, item.section, item.partial));
          break;
        }
        case 'BINARY': {
          const head = `BINARY[${item.part.join('.')}]${item.partial ? `<${item.partial.start}>` : ''}`;
          let data: Buffer;
          try {
            data = await fetchBinary(content!, item.part, item.partial);
          } catch (err) {
            if (err instanceof NoSuchPartError) {
              add({ raw: head }, null);
              break;
            }
            throw err;
          }
          // RFC 3516 §4.2: literal8 only when the content holds NUL, which a literal cannot carry.
          add({ raw: head }, data.includes(0) ? { literal8: data } : data);
          break;
        }
        case 'BINARY.SIZE': {
          const head = `BINARY.SIZE[${item.part.join('.')}]`;
          try {
            add({ raw: head }, await binarySize(content!, item.part));
          } catch (err) {
            if (!(err instanceof NoSuchPartError)) throw err;
            add({ raw: head }, null);
          }
          break;
        }
        case 'SAVEDATE':
          // RFC 8514 §4: NIL where the save date is not kept (SAVEDATE is not announced).
          add({ atom: 'SAVEDATE' }, null);
          break;
        case 'EMAILID':
          add({ atom: 'EMAILID' }, [{ atom: entry.messageId }]);
          break;
        case 'THREADID':
          add({ atom: 'THREADID' }, null);
          break;
      }
    }
    if (flagsChanged && !plan.withFlags) add({ atom: 'FLAGS' }, flagList(entry.flags));
    if (plan.withModseq) add({ atom: 'MODSEQ' }, [entry.modseq]);
  } catch (err) {
    destroyAll(pieces);
    throw err;
  }

  // A keyword the session has not been told of goes out in `* FLAGS` before this line.
  if (plan.withFlags || flagsChanged) ctx.session.selected?.announceFlags(entry.flags);
  ctx.write(`* ${seq} FETCH (`);
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i];
    if (i > 0) ctx.write(' ');
    if ('text' in p) {
      ctx.write(p.text);
      continue;
    }
    ctx.write(`${p.head} ${literalPrefix(p.size)}`);
    try {
      await ctx.writeStream(p.stream);
    } catch (err) {
      // Part of the literal is out and the rest cannot come: the client can no longer parse this
      // connection. End it (after the tagged response) instead of sending wrong bytes.
      destroyAll(pieces.slice(i + 1));
      ctx.log.error({ err, uid: entry.uid }, 'IMAP FETCH: message content failed mid-response; closing the connection');
      ctx.setState('logout');
      throw err;
    }
  }
  ctx.write(')\r\n');
}
