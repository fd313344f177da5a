import type { BlobStore } from './blob-store.js';
import { FsBlobStore } from './fs-blob-store.js';
import { S3BlobStore, type S3BlobStoreOptions } from './s3-blob-store.js';

export * from './blob-store.js';
export { FsBlobStore, type FsBlobStoreOptions } from './fs-blob-store.js';
export { S3BlobStore, type S3BlobStoreOptions } from './s3-blob-store.js';

export interface BlobStoreConfig {
  backend: 'fs' | 's3';
  /** Required when backend is 'fs'. */
  fs?: { path: string };
  /** Required when backend is 's3'. */
  s3?: S3BlobStoreOptions;
}

export function createBlobStore(cfg: BlobStoreConfig): BlobStore {
  switch (cfg.backend) {
    case 'fs':
      if (!cfg.fs?.path) throw new Error('blob store: backend "fs" needs fs.path');
      return new FsBlobStore({ root: cfg.fs.path });
    case 's3':
      if (!cfg.s3?.bucket || !cfg.s3.region) throw new Error('blob store: backend "s3" needs s3.bucket and s3.region');
      return new S3BlobStore(cfg.s3);
    default:
      throw new Error(`blob store: unknown backend ${JSON.stringify((cfg as { backend: unknown }).backend)}`);
  }
}
