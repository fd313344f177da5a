/** IMAP views of a message's header and MIME structure: ENVELOPE and BODYSTRUCTURE (RFC 9051 §7.5.2). */
export { buildEnvelope } from './envelope.js';
export { buildBodyStructure, encapsulatedMessages } from './bodystructure.js';
export { parseAddressList, MISSING_DOMAIN, MISSING_MAILBOX, type EnvelopeAddress } from './address-list.js';
export { firstHeaderFields } from './header-bytes.js';
