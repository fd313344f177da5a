/** Public surface of the mailbox-state service. */
export { MailboxStateService } from './service.js';
export * from './types.js';
export * from './errors.js';
export { SPECIAL_FOLDERS, SPECIAL_USES, type SpecialFolder } from './special-folders.js';
export { SYSTEM_FLAGS, type SystemFlag } from './flag-rules.js';
export { INBOX, DELIMITER, normaliseFolderName } from './folder-names.js';
export { tenantStorageLimitFromPlans, tenantStorageLimitFromRow } from './quota.js';
export * as mailboxStateLimits from './limits.js';
export type { MessageContentInfo } from './content.js';
export type { MessageEntry } from './message-entries.js';
