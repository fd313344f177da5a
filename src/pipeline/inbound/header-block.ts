/**
 * The header section of a received message as byte ranges: a pure function of bytes, so the
 * pipeline can drop single fields (forged Authentication-Results, RFC 8601 §5) and read others
 * (From:, for submission) while the stored message otherwise stays byte-identical to what arrived.
 *
 * RFC 5322 §2.2: a field is `name ":" value CRLF`, and folding continues a field on lines that
 * start with SP or HTAB (§2.2.3). The section ends at the first empty line (§2.1). Bare-LF line
 * ends are accepted too, as real mail has them.
 */

export interface HeaderField {
  /** The field name as written (RFC 5322 §3.6.8 ftext), or '' for a malformed line without a colon. */
  name: string;
  /** Byte offset of the field's first byte in the message. */
  start: number;
  /** Byte offset just after the field's last line break. */
  end: number;
  /** The value after the colon, unfolded (line breaks removed, RFC 5322 §2.2.3), not decoded. */
  value: string;
}

export interface HeaderBlock {
  fields: HeaderField[];
  /** Byte offset of the body (just after the empty line), or null when no empty line was found. */
  bodyStart: number | null;
}

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HTAB = 0x09;
// RFC 5322 §3.6.8: ftext is %d33-57 / %d59-126 (printable ASCII except ":").
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

/**
 * Splits `head` (the first bytes of a message) into header fields. When `head` ends inside the
 * header section, `bodyStart` is null and the last field may be incomplete: callers pass enough
 * bytes (the pipeline's max_header_bytes) and treat a missing end as "header section too large"
 * unless `head` is the whole message (a message without a body, RFC 5322 §3.5 allows it).
 */
export function parseHeaderBlock(head: Buffer): HeaderBlock {
  const fields: HeaderField[] = [];
  let pos = 0;
  let current: { start: number; end: number; lines: Buffer[] } | null = null;
  const flush = () => {
    if (!current) return;
    fields.push(toField(current.start, current.end, current.lines));
    current = null;
  };
  while (pos < head.length) {
    const nl = head.indexOf(LF, pos);
    const lineEnd = nl === -1 ? head.length : nl + 1;
    const line = head.subarray(pos, lineEnd);
    const content = stripLineBreak(line);
    if (content.length === 0 && nl !== -1) {
      flush();
      return { fields, bodyStart: lineEnd };
    }
    if (current && (line[0] === SP || line[0] === HTAB)) {
      current.lines.push(content);
      current.end = lineEnd;
    } else {
      flush();
      current = { start: pos, end: lineEnd, lines: [content] };
    }
    pos = lineEnd;
  }
  flush();
  return { fields, bodyStart: null };
}

function stripLineBreak(line: Buffer): Buffer {
  let end = line.length;
  if (end > 0 && line[end - 1] === LF) end--;
  if (end > 0 && line[end - 1] === CR) end--;
  return line.subarray(0, end);
}

function toField(start: number, end: number, lines: Buffer[]): HeaderField {
  // UTF-8: RFC 6532 §3.2 allows it in header values of SMTPUTF8 mail; invalid bytes become U+FFFD.
  const text = lines.map((l) => l.toString('utf8')).join('');
  const colon = text.indexOf(':');
  const name = colon > 0 ? text.slice(0, colon).trimEnd() : '';
  if (!FIELD_NAME.test(name)) return { name: '', start, end, value: text };
  return { name, start, end, value: text.slice(colon + 1).trim() };
}

/** The fields named `name` (case-insensitive, RFC 5322 §1.2.2). */
export function fieldsNamed(block: HeaderBlock, name: string): HeaderField[] {
  const lower = name.toLowerCase();
  return block.fields.filter((f) => f.name.toLowerCase() === lower);
}
