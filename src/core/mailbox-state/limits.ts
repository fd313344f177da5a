/**
 * Limits of the mailbox-state service, in one place so docs and error messages agree.
 * Every one of them is enforced with a LimitExceededError / InvalidFolderNameError /
 * InvalidFlagError naming the limit.
 */

/** Folder name length in UTF-8 bytes (a common server limit; IMAP itself sets none). */
export const MAX_FOLDER_NAME_BYTES = 255;
/** Hierarchy depth ("a/b/c" has depth 3). */
export const MAX_FOLDER_DEPTH = 32;
/** Live folders per mailbox. */
export const MAX_FOLDERS_PER_MAILBOX = 2000;
/** Length of one keyword (IMAP flag-keyword atom, RFC 9051 §9). */
export const MAX_KEYWORD_LENGTH = 64;
/** Distinct keywords on one folder entry. */
export const MAX_KEYWORDS_PER_ENTRY = 64;
/** Default and maximum page size of listEntries. */
export const DEFAULT_LIST_LIMIT = 1000;
export const MAX_LIST_LIMIT = 10000;
/**
 * UIDs per SQL `IN (...)` list. Large UID sets (IMAP `1:*`) are processed in chunks of this size
 * inside one transaction, staying far below SQLite's 32766 and PostgreSQL's 65535 bind limits.
 */
export const UID_CHUNK = 500;
/** Targets of one deliver() call (SMTP allows 100 recipients by default, SPEC §5.1). */
export const MAX_DELIVERY_TARGETS = 1000;
