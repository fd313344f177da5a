/** The IMAP response encoder: values (./types.ts) and their encoding (./encode.ts). */
export { encodeValue, encodeValues, literalPrefix, flagList, formatInternalDate, isAtomSafe, MAX_QUOTED_BYTES } from './encode.js';
export type { ImapValue, EncodeOptions } from './types.js';
