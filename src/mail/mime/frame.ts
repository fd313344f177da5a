/**
 * The parser's record of one open part: the part being built, and what the parser needs while it
 * reads that part's header and body. Frames form a stack from the root message to the innermost
 * open part.
 */
import { defaultContentType, type ContentTypeDefault } from './part-fields.js';
import type { MimePart } from './structure.js';

/**
 * Multipart progress (RFC 2046 §5.1.1): preamble, parts, and after the close delimiter the
 * epilogue; 'skipping' once the part limit is hit (delimiters still end parts, none is listed).
 */
export type MultipartState = 'preamble' | 'parts' | 'skipping' | 'epilogue';

export interface Frame {
  part: MimePart;
  depth: number;
  /** The top-level message or an encapsulated one: a non-multipart body of it is numbered '.1'. */
  messageRoot: boolean;
  contentDefault: ContentTypeDefault;
  inHeader: boolean;
  // While the header is read:
  fields: Map<string, Buffer> | null;
  fieldsSeen: number;
  headerBytes: number;
  headerOverLimit: boolean;
  /** The Content-* field being read (continuation lines may follow), or null. */
  field: string | null;
  fieldChunks: Buffer[];
  fieldBytes: number;
  // Once the body is read:
  bodyStartLine: number;
  /** Boundary of a multipart whose delimiters are being looked for. */
  boundary: Buffer | null;
  state: MultipartState;
  childCount: number;
}

export function newPart(part: string, headerStart: number, context: ContentTypeDefault): MimePart {
  return {
    part,
    headerStart,
    headerEnd: headerStart,
    bodyStart: headerStart,
    bodyEnd: headerStart,
    bodyLines: 0,
    contentType: defaultContentType(context),
    encoding: '7bit',
    id: null,
    description: null,
    md5: null,
    disposition: null,
    language: null,
    location: null,
    filename: null,
    children: [],
    message: null,
  };
}

/** Part specifier of a multipart's n-th part (RFC 9051 §6.4.5). */
export function childNumber(parent: MimePart, n: number): string {
  return parent.part === '' ? String(n) : `${parent.part}.${n}`;
}

/**
 * Number of the message encapsulated in `container`: the container's own number when it is a part
 * of a multipart; when the container is a message's whole body, that body's number ('1', '2.1').
 */
export function encapsulatedNumber(container: Frame): string {
  if (!container.messageRoot) return container.part.part;
  return container.part.part === '' ? '1' : `${container.part.part}.1`;
}

export function newFrame(part: MimePart, depth: number, messageRoot: boolean, contentDefault: ContentTypeDefault): Frame {
  return {
    part,
    depth,
    messageRoot,
    contentDefault,
    inHeader: true,
    fields: new Map(),
    fieldsSeen: 0,
    headerBytes: 0,
    headerOverLimit: false,
    field: null,
    fieldChunks: [],
    fieldBytes: 0,
    bodyStartLine: 0,
    boundary: null,
    state: 'preamble',
    childCount: 0,
  };
}
