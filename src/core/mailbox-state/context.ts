/** What every mailbox-state module needs: the service's dependencies with defaults applied. */
import type { Logger } from 'pino';
import type { Database } from '../../store/db/database.js';
import type { BlobStore } from '../../store/blob/blob-store.js';
import type { ChangeBus } from '../../store/events/change-bus.js';
import type { TenantStorageLimit } from './types.js';

export interface Ctx {
  db: Database;
  blobs: BlobStore;
  bus: ChangeBus;
  previewBytes: number | undefined;
  nodeId: string | undefined;
  logger: Logger | undefined;
  tenantStorageLimit: TenantStorageLimit;
}
