/**
 * MIME structure with byte offsets: an incremental, bounded-memory parser and helpers to read
 * header fields and navigate parts by IMAP part specifier.
 */
import { MimeStructureParser } from './parser.js';
import type { MimeLimits } from './limits.js';
import type { MimeStructure } from './structure.js';

export { MimeStructureParser } from './parser.js';
export { structureTee, type StructureTee } from './tee.js';
export { headerFieldsOf, type HeaderField } from './header.js';
export { findPart, listParts } from './find.js';
export { splitStructuredValue, decodeParameters, decodeFileName, type RawParameter, type StructuredValue, type DecodedParameter } from './params.js';
export { DEFAULT_MIME_LIMITS, RFC_MAX_BOUNDARY_LENGTH, MAX_DEFECTS, resolveMimeLimits, type MimeLimits } from './limits.js';
export type { MimeStructure, MimePart, MimeContentType, MimeDisposition, MimeDefect, MimeDefectCode } from './structure.js';

/** The structure of a whole message held in memory. */
export function parseMimeStructure(raw: Buffer, limits?: Partial<MimeLimits>): MimeStructure {
  const parser = new MimeStructureParser(limits);
  parser.write(raw);
  return parser.end();
}
