/**
 * Test data for mailbox-state suites: tenant / domain / mailbox rows inserted directly (the
 * tenancy service is not a dependency of these tests), sample messages, and a ChangeBus that
 * records what was published.
 */
import { randomBytes } from 'node:crypto';
import type { Database } from '../../src/store/db/database.js';
import type { ChangeBus, ChangeEvent, ChangeHandler } from '../../src/store/events/change-bus.js';
import { createBlobStore, type BlobStore } from '../../src/store/blob/index.js';
import { s3TestSettings, shape, tempDir } from './shape.js';

function suffix(): string {
  return randomBytes(4).toString('hex');
}

export async function seedTenant(db: Database, opts: { storageBytes?: number } = {}): Promise<string> {
  const id = `t-${suffix()}`;
  const at = Date.now();
  await db.kysely
    .insertInto('tenants')
    .values({
      id,
      name: `tenant-${id}`,
      status: 'active',
      plan: 'default',
      limits_json: JSON.stringify(opts.storageBytes !== undefined ? { storage_bytes: opts.storageBytes } : {}),
      legal_hold: 0,
      retention_days: null,
      used_bytes: 0,
      created_at: at,
      updated_at: at,
      deleted_at: null,
    })
    .execute();
  return id;
}

export async function seedMailbox(db: Database, tenantId: string, opts: { quotaBytes?: number; localPart?: string } = {}): Promise<string> {
  const at = Date.now();
  const domainId = `d-${suffix()}`;
  const domain = `${domainId}.example`;
  await db.kysely
    .insertInto('domains')
    .values({ id: domainId, tenant_id: tenantId, name: domain, status: 'active', catch_all_mailbox_id: null, created_at: at, updated_at: at })
    .execute();
  const id = `m-${suffix()}`;
  const localPart = opts.localPart ?? 'user';
  await db.kysely
    .insertInto('mailboxes')
    .values({
      id,
      tenant_id: tenantId,
      domain_id: domainId,
      user_id: null,
      address: `${localPart}@${domain}`,
      local_part: localPart,
      quota_bytes: opts.quotaBytes ?? 0,
      used_bytes: 0,
      legal_hold: 0,
      status: 'active',
      created_at: at,
      updated_at: at,
    })
    .execute();
  return id;
}

/** A small RFC 5322 message; `bodyBytes` pads the body to make sizes predictable. */
export function sampleMessage(subject: string, opts: { bodyBytes?: number; to?: string } = {}): Buffer {
  const body = opts.bodyBytes ? 'x'.repeat(opts.bodyBytes) : `Hello, this is ${subject}.`;
  return Buffer.from(
    [
      'From: Alice <alice@sender.example>',
      `To: ${opts.to ?? 'bob@rcpt.example'}`,
      `Subject: ${subject}`,
      'Date: Sat, 29 Nov 2025 10:00:00 +0000',
      `Message-ID: <${suffix()}@sender.example>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      body,
      '',
    ].join('\r\n'),
  );
}

/** Records published events; subscribers are called synchronously. */
export class RecordingBus implements ChangeBus {
  readonly kind = 'memory' as const;
  readonly events: ChangeEvent[] = [];
  private readonly handlers = new Set<ChangeHandler>();

  async publish(event: ChangeEvent): Promise<void> {
    this.events.push(event);
    for (const h of this.handlers) h(event);
  }

  subscribe(handler: ChangeHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  async close(): Promise<void> {
    this.handlers.clear();
  }

  clear(): void {
    this.events.length = 0;
  }
}

/**
 * A blob store that child processes can open too: the parent creates it (a temp dir, or an S3
 * bucket) and passes `env` to the children, which call `blobStoreFromEnv()`.
 */
export async function sharedBlobStore(): Promise<{ blobs: BlobStore; env: Record<string, string>; remove(): Promise<void> }> {
  if (shape === 'embedded') {
    const dir = tempDir('mairust-shared-blobs-');
    const env = { MAIRUST_TEST_BLOB_DIR: dir.path };
    const blobs = blobStoreFromEnv(env);
    return { blobs, env, remove: async () => { await blobs.close(); dir.remove(); } };
  }
  const env = { MAIRUST_TEST_BLOB_BUCKET: `mairust-t-${randomBytes(5).toString('hex')}` };
  const blobs = blobStoreFromEnv(env, true);
  await blobs.put('probe/create-bucket', Buffer.from('x')); // creates the bucket before children start
  return { blobs, env, remove: async () => { await blobs.close(); } };
}

export function blobStoreFromEnv(env: NodeJS.ProcessEnv = process.env, createBucket = false): BlobStore {
  if (env.MAIRUST_TEST_BLOB_DIR) return createBlobStore({ backend: 'fs', fs: { path: env.MAIRUST_TEST_BLOB_DIR } });
  if (!env.MAIRUST_TEST_BLOB_BUCKET) throw new Error('set MAIRUST_TEST_BLOB_DIR or MAIRUST_TEST_BLOB_BUCKET');
  return createBlobStore({
    backend: 's3',
    s3: { ...s3TestSettings(), bucket: env.MAIRUST_TEST_BLOB_BUCKET, forcePathStyle: true, checksumMode: 'WHEN_REQUIRED', createBucket },
  });
}
