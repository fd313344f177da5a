/**
 * What the IMAP and POP3 sessions need from the rest of MaiRust, as one typed seam (ARCHITECTURE
 * §1.2: no SQL in a protocol folder). The composition root (src/app/imap-listeners.ts) builds it
 * from the AppContext; tests build it from real services over a real database.
 */
import type { Logger } from 'pino';
import type { MailboxStateService } from '../../core/mailbox-state/index.js';
import type { Scope } from '../../core/scope.js';
import type { TextSearch } from '../../core/search/text-index.js';
import type { Mailbox } from '../../core/tenancy/types.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Lockout } from '../../security/lockout.js';
import type { ChangeBus } from '../../store/events/change-bus.js';

export interface MailUser {
  id: string;
  tenantId: string;
  email: string;
  role: string;
}

export interface LoginInfo {
  remoteAddress: string;
  /** The listener's name (`imaps`, `pop3`, `submission`…) — written to the audit entry. */
  listener: string;
  protocol: 'smtp' | 'imap' | 'pop3';
}

/** At most this many ids from one text search (far above any real folder's matches). */
export const SEARCH_TEXT_CAP = 1_000_000;

export interface MailAccessServices {
  /** Every change and every read of mail goes through the mailbox-state service. */
  state: MailboxStateService;
  bus: ChangeBus;
  lockout: Lockout;
  /**
   * Checks a login (password) and writes the login audit entry; null for any failure (unknown
   * account, wrong password, suspended user or tenant). Lockout is the caller's business.
   */
  authenticate(username: string, password: string, info: LoginInfo): Promise<MailUser | null>;
  /**
   * The user's own mailbox (the one whose `userId` is the user): the only mailbox a mail session
   * may open (SPEC §9). Null when the user has none or it is disabled.
   */
  ownMailbox(user: MailUser): Promise<Mailbox | null>;
  /**
   * Substring search over subject/addresses/body through the text index (tenant-scoped): every
   * matching message id, however many (IMAP SEARCH answers must be exact), up to a safety cap of
   * SEARCH_TEXT_CAP ids. `folderSize` (entries of `folderId`) lets a small folder be searched by
   * reading its rows instead of the tenant-wide index.
   */
  searchText(scope: Scope, q: Omit<TextSearch, 'limit'> & { folderSize?: number }): Promise<string[]>;
  logger: Logger;
  metrics?: Metrics;
}
