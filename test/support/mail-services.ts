/**
 * Real services behind the IMAP and POP3 sessions in the integration suites: a fresh database and
 * blob store of the current shape, the change bus (PostgreSQL NOTIFY in the cluster shape, so a
 * second process sees changes as in production), TenancyService with cheap Argon2 parameters, the
 * MailboxStateService and the `MailAccessServices` seam built exactly like src/app/mail-access.ts.
 */
import type { Logger } from 'pino';
import { systemScope, tenantScope, type Scope } from '../../src/core/scope.js';
import { MailboxStateService, type Folder } from '../../src/core/mailbox-state/index.js';
import { TenancyService } from '../../src/core/tenancy/service.js';
import type { Mailbox } from '../../src/core/tenancy/types.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import type { MailAccessServices, MailUser } from '../../src/protocols/imap/services.js';
import { createMailAccessServices } from '../../src/app/mail-access.js';
import { Lockout, type LockoutOptions } from '../../src/security/lockout.js';
import { createChangeBus } from '../../src/store/events/index.js';
import type { ChangeBus } from '../../src/store/events/change-bus.js';
import type { BlobStore } from '../../src/store/blob/blob-store.js';
import { freshBlobStore } from './blobs.js';
import { freshDatabase, type TestDatabase } from './shape.js';
import { cheapPasswords, plans } from './tenancy-fixtures.js';

/** Passwords of the accounts `addAccount` makes (≥ 12 characters, SPEC §10). */
export const TEST_PASSWORD = 'correct horse battery staple';

export interface TestAccount {
  user: MailUser;
  mailbox: Mailbox;
  scope: Scope;
  email: string;
  password: string;
  /** The account's folder by name (INBOX, Sent, Drafts, Junk, Trash, Archive, or one created later). */
  folder(name: string): Promise<Folder>;
  /** Appends a message to a folder (default INBOX) through the mailbox-state service, like a delivery. */
  deliver(raw: string | Buffer, opts?: { folder?: string; flags?: string[]; internalDate?: number }): Promise<{ uid: number; messageId: string }>;
}

export interface MailServicesFixture {
  test: TestDatabase;
  blobs: BlobStore;
  bus: ChangeBus;
  tenancy: TenancyService;
  state: MailboxStateService;
  lockout: Lockout;
  services: MailAccessServices;
  logger: Logger;
  /** The metrics registry the sessions report to (no process metrics). */
  metrics: Metrics;
  /** A tenant with one domain (created once per name) and a user owning a mailbox of the same address. */
  addAccount(email: string, opts?: { tenant?: string; quotaBytes?: number; password?: string }): Promise<TestAccount>;
  close(): Promise<void>;
}

export async function mailServicesFixture(opts: { lockout?: Partial<LockoutOptions>; nodeId?: string } = {}): Promise<MailServicesFixture> {
  const test = await freshDatabase();
  const blobStore = await freshBlobStore();
  const logger = createLogger({ level: process.env.MAIRUST_TEST_LOG_LEVEL ?? 'silent', format: 'json', destination: 2 });
  const nodeId = opts.nodeId ?? 'test-node';
  const bus = await createChangeBus('auto', test.db, { nodeId, logger });
  const state = new MailboxStateService({ db: test.db, blobs: blobStore.blobs, bus, nodeId, logger });
  const tenancy = new TenancyService({
    db: test.db,
    plans,
    defaultPlan: 'default',
    createDefaultFolders: async (trx, scope, mailboxId) => void (await state.createDefaultFolders(scope, mailboxId, trx)),
    passwordOptions: cheapPasswords,
  });
  const lockout = new Lockout(test.db, opts.lockout);
  const metrics = createMetrics({ defaultMetrics: false });
  // Built exactly as the composition root builds them (logins audited, own mailbox only).
  const services = createMailAccessServices({ db: test.db, tenancy, state, bus, lockout, logger, metrics });

  const tenants = new Map<string, string>();
  const domains = new Set<string>();
  async function addAccount(email: string, o: { tenant?: string; quotaBytes?: number; password?: string } = {}): Promise<TestAccount> {
    const tenantName = o.tenant ?? 'acme';
    let tenantId = tenants.get(tenantName);
    if (!tenantId) {
      tenantId = (await tenancy.tenants.create(systemScope, { name: tenantName })).id;
      tenants.set(tenantName, tenantId);
    }
    const domain = email.split('@')[1];
    if (!domains.has(domain)) {
      await tenancy.domains.add(systemScope, { tenantId, name: domain });
      domains.add(domain);
    }
    const password = o.password ?? TEST_PASSWORD;
    const u = await tenancy.users.add(systemScope, { tenantId, email, password });
    const mailbox = await tenancy.mailboxes.add(systemScope, { address: email, user: u.id, quotaBytes: o.quotaBytes ?? 0 });
    const scope = tenantScope(tenantId);
    const user: MailUser = { id: u.id, tenantId, email: u.email, role: u.role };
    const folder = async (name: string) => {
      const f = await state.findFolder(scope, mailbox.id, name);
      if (!f) throw new Error(`no folder ${name} in ${email}`);
      return f;
    };
    return {
      user,
      mailbox,
      scope,
      email,
      password,
      folder,
      async deliver(raw, d = {}) {
        const f = await folder(d.folder ?? 'INBOX');
        const bytes = typeof raw === 'string' ? Buffer.from(raw) : raw;
        const r = await state.append(scope, mailbox.id, f.id, bytes, { flags: d.flags, internalDate: d.internalDate });
        return { uid: r.uid, messageId: r.messageId };
      },
    };
  }

  return {
    test,
    blobs: blobStore.blobs,
    bus,
    tenancy,
    state,
    lockout,
    services,
    logger,
    metrics,
    addAccount,
    async close() {
      await bus.close().catch(() => {});
      await blobStore.remove().catch(() => {});
      await test.drop().catch(() => {});
    },
  };
}

/** A small RFC 5322 message with CRLF line ends. */
export function sampleMessage(o: { subject?: string; from?: string; to?: string; body?: string; date?: string; messageId?: string } = {}): string {
  const lines = [
    `From: ${o.from ?? 'Sender <sender@example.net>'}`,
    `To: ${o.to ?? 'alice@acme.test'}`,
    `Subject: ${o.subject ?? 'Hello'}`,
    `Date: ${o.date ?? 'Mon, 2 Nov 2026 10:00:00 +0000'}`,
    `Message-ID: ${o.messageId ?? `<${Math.random().toString(36).slice(2)}@example.net>`}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    o.body ?? 'Hello there.',
    '',
  ];
  return lines.join('\r\n');
}
