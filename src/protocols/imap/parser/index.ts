/**
 * The IMAP parser: command framing (reader), the generic tokenizer, and the grammar helpers the
 * command modules use to read their arguments (RFC 9051 §9).
 */
export * from './types.js';
export { ImapCommandReader, type ReaderEvent, type ReaderLimits } from './reader.js';
export { literalAnnouncement, parseCommand, readTag, MAX_LIST_DEPTH, MAX_TOKENS, type LiteralAnnouncement } from './tokenizer.js';
export { asAtom, asAstring, asAstringBytes, asFlagList, asList, asNstring, asNumber, asString, expectArgs, isFlag, parseNumberText } from './args.js';
export { formatSequenceSet, looksLikeSequenceSet, parseSequenceSet } from './sequence-set.js';
export { formatDateTime, parseDateTime, parseSearchDate } from './dates.js';
export { decodeMailboxName, encodeMailboxName } from './mailbox-name.js';
export { parseFetchRequest, parseSectionSpec } from './fetch-items.js';
export { parseSearchRequest, UnsupportedCharsetError, MAX_SEARCH_DEPTH } from './search-keys.js';
export { parseStoreRequest } from './store-args.js';
