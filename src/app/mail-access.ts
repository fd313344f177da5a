/**
 * Builds the services the IMAP and POP3 sessions use (src/protocols/imap/services.ts) from the
 * AppContext. Part of the composition root: logins are checked by the tenancy service and audited
 * here exactly like SMTP AUTH (SPEC §10), and a session may only open the user's own mailbox (SPEC §9).
 */
import type { Logger } from 'pino';
import { systemScope, tenantScope } from '../core/scope.js';
import { searchTextAll } from '../core/search/text-index.js';
import { SEARCH_TEXT_CAP, type MailAccessServices, type MailUser, type LoginInfo } from '../protocols/imap/services.js';
import { writeAudit } from '../security/audit.js';
import { Lockout } from '../security/lockout.js';
import type { MailboxStateService } from '../core/mailbox-state/index.js';
import type { TenancyService } from '../core/tenancy/service.js';
import type { Metrics } from '../observability/metrics.js';
import type { Database } from '../store/db/database.js';
import type { ChangeBus } from '../store/events/change-bus.js';
import type { AppContext } from './context.js';

export interface MailAccessParts {
  db: Database;
  tenancy: TenancyService;
  state: MailboxStateService;
  bus: ChangeBus;
  lockout: Lockout;
  logger: Logger;
  metrics?: Metrics;
}

/** The services from their parts (tests build the parts over a fresh database). */
export function createMailAccessServices(parts: MailAccessParts): MailAccessServices {
  const { db, tenancy, logger } = parts;
  return {
    state: parts.state,
    bus: parts.bus,
    lockout: parts.lockout,
    logger,
    metrics: parts.metrics,
    async authenticate(username: string, password: string, info: LoginInfo): Promise<MailUser | null> {
      const user = await tenancy.authenticate(systemScope, username, password);
      await writeAudit(db.kysely, {
        tenantId: user?.tenantId ?? null,
        eventType: user ? 'auth.login' : 'auth.login_failed',
        actor: { type: 'user', id: user?.id, email: username.slice(0, 320), ip: info.remoteAddress },
        target: { type: info.protocol, id: info.listener },
        metadata: { protocol: info.protocol },
      }).catch((err) => logger.warn({ err: { message: (err as Error).message } }, 'could not write the login audit entry'));
      if (!user) return null;
      await tenancy.users.recordLogin(systemScope, user.id).catch(() => {});
      return { id: user.id, tenantId: user.tenantId, email: user.email, role: user.role };
    },
    async ownMailbox(user: MailUser) {
      const [own] = await tenancy.mailboxes.list(tenantScope(user.tenantId), { userId: user.id, limit: 1 });
      return own && own.status === 'active' ? own : null;
    },
    searchText: (scope, { folderSize, ...q }) => searchTextAll(db, scope, q, SEARCH_TEXT_CAP, undefined, { folderSize }),
  };
}

export function buildMailAccessServices(app: AppContext, logger: Logger, lockout = new Lockout(app.db)): MailAccessServices {
  return createMailAccessServices({ db: app.db, tenancy: app.tenancy, state: app.mailboxState, bus: app.bus, lockout, logger, metrics: app.metrics });
}
