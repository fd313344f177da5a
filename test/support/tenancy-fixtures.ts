/**
 * Shared set-up for the tenancy integration suites: a fresh database of the current shape, a
 * TenancyService with cheap Argon2 parameters, and a stand-in for the mailbox-state service's
 * folder factory that writes the six special folders directly.
 */
import type { Kysely } from 'kysely';
import { freshDatabase, type TestDatabase } from './shape.js';
import { newId } from '../../src/store/db/database.js';
import type { DB } from '../../src/store/db/types.js';
import type { Scope } from '../../src/core/scope.js';
import { TenancyService } from '../../src/core/tenancy/service.js';
import type { CreateDefaultFolders } from '../../src/core/tenancy/context.js';
import type { Plan } from '../../src/config/schema.js';

export const cheapPasswords = { memoryCost: 1024, timeCost: 1, parallelism: 1 };

export const plans: Record<string, Plan> = {
  default: { max_users: 10, max_domains: 5, storage_bytes: 0, mailbox_storage_bytes: 1_000_000, daily_outbound: 100 },
  tiny: { max_users: 2, max_domains: 1, storage_bytes: 0, mailbox_storage_bytes: 5_000, daily_outbound: 10 },
};

export const SPECIAL_FOLDERS: [string, string | null][] = [
  ['INBOX', null],
  ['Sent', '\\Sent'],
  ['Drafts', '\\Drafts'],
  ['Junk', '\\Junk'],
  ['Trash', '\\Trash'],
  ['Archive', '\\Archive'],
];

export const insertSixFolders: CreateDefaultFolders = async (trx: Kysely<DB>, scope: Scope, mailboxId: string) => {
  const mailbox = await trx.selectFrom('mailboxes').select('tenant_id').where('id', '=', mailboxId).executeTakeFirstOrThrow();
  if (scope.kind === 'tenant' && scope.tenantId !== mailbox.tenant_id) throw new Error('folder factory called with the wrong scope');
  const t = Date.now();
  await trx
    .insertInto('folders')
    .values(
      SPECIAL_FOLDERS.map(([name, special_use]) => ({
        id: newId(),
        tenant_id: mailbox.tenant_id,
        mailbox_id: mailboxId,
        name,
        special_use,
        uid_validity: Math.floor(t / 1000),
        uid_next: 1,
        highest_modseq: 1,
        subscribed: 1,
        created_at: t,
      })),
    )
    .execute();
};

export interface TenancyFixture {
  test: TestDatabase;
  tenancy: TenancyService;
  /** Replace to make the folder factory fail, etc. */
  folders: { create: CreateDefaultFolders };
}

export async function tenancyFixture(): Promise<TenancyFixture> {
  const test = await freshDatabase();
  const folders = { create: insertSixFolders };
  const tenancy = new TenancyService({
    db: test.db,
    plans,
    defaultPlan: 'default',
    createDefaultFolders: (trx, scope, id) => folders.create(trx, scope, id),
    passwordOptions: cheapPasswords,
  });
  return { test, tenancy, folders };
}

/** Runs `fn` and returns the error it throws (fails when it does not throw). */
export async function caught(fn: () => Promise<unknown>): Promise<Error & { code?: string; details?: Record<string, unknown> }> {
  try {
    await fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected an error, but the call succeeded');
}

export async function auditRows(db: Kysely<DB>, eventType: string) {
  return db.selectFrom('audit_log').selectAll().where('event_type', '=', eventType).orderBy('id').execute();
}
