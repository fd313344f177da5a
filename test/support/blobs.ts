/** A fresh blob store of the current shape: fs in a temp dir, or S3 with a new bucket. */
import { randomBytes } from 'node:crypto';
import { createBlobStore, type BlobStore } from '../../src/store/blob/index.js';
import { shape, tempDir, s3TestSettings } from './shape.js';

export async function freshBlobStore(): Promise<{ blobs: BlobStore; remove(): Promise<void> }> {
  if (shape === 'embedded') {
    const dir = tempDir('mairust-blobs-');
    const blobs = createBlobStore({ backend: 'fs', fs: { path: dir.path }, s3: {} as never });
    return { blobs, remove: async () => { await blobs.close(); dir.remove(); } };
  }
  const s3 = s3TestSettings();
  const blobs = createBlobStore({
    backend: 's3',
    fs: { path: '' },
    s3: {
      ...s3,
      bucket: `mairust-t-${randomBytes(5).toString('hex')}`,
      forcePathStyle: true,
      multipartThresholdBytes: 8 * 1024 * 1024,
      partSizeBytes: 8 * 1024 * 1024,
      checksumMode: 'WHEN_REQUIRED',
      createBucket: true,
    },
  });
  return { blobs, remove: async () => { await blobs.close(); } };
}
