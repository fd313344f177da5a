/** Email authentication of inbound mail: SPF, DKIM, DMARC, ARC (via mailauth) and the Authentication-Results field. */
export { verifyMessage, GRACE_MS, type VerifyDeps, type VerifyLogger } from './verify.js';
export type { EmailAuthResult, VerifyInput, SpfOutcome, DkimOutcome, DmarcOutcome, ArcOutcome } from './types.js';
export { dmarcDisposition, sampledPolicy, parseDmarcPolicy, normalisePct, type Disposition, type DmarcPolicy, type DmarcEvaluation } from './policy.js';
export { formatAuthResults, formatPvalue, formatComment, foldWords, AUTH_RESULTS_FIELD, MAX_LINE, type ResInfo } from './auth-results.js';
export { parseAuthResults, authservIdOf, type ParsedAuthResults, type ParsedResInfo, type ParsedProperty } from './auth-results-parser.js';
export { stripForgedAuthResults, isForgedAuthResults, type HeaderFieldLike } from './forged-auth-results.js';
export { EmailAuthConfigSchema, type EmailAuthConfig } from '../config/sections/emailauth.js';
