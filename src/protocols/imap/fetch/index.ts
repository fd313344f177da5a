/** What FETCH reads from a stored message: content loading, BODY[section] and BINARY data. */
export { loadMessageContent, loadMessageContents, inMemoryMessageContent, MAX_HEADER_READ, type MessageContent, type LoadOptions } from './message-content.js';
export { fetchSection, fetchBinary, binarySize, partialWindow, UnknownCteError, NoSuchPartError, type SectionBody } from './sections.js';
export { HeaderFieldFilter } from './header-filter.js';
