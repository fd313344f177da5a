// BlobStore contract tests: always against FsBlobStore; against S3BlobStore in the cluster shape
// (MAIRUST_TEST_SHAPE=cluster), where a missing MAIRUST_S3_ENDPOINT fails instead of skipping
// (scripts/s3/swift-start.sh prints the env).
//   MAIRUST_TEST_SHAPE=cluster node --import tsx --test test/integration/blob-store.test.ts
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { shape } from '../support/shape.js';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  DeleteBucketCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import {
  assertValidBlobKey,
  BlobNotFoundError,
  BlobStoreUnavailableError,
  createBlobStore,
  FsBlobStore,
  InvalidBlobKeyError,
  newBlobKey,
  S3BlobStore,
  type BlobStat,
  type BlobStore,
  type S3BlobStoreOptions,
} from '../../src/store/blob/index.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const rid = () => randomBytes(6).toString('hex');

async function collect(it: AsyncIterable<BlobStat>): Promise<BlobStat[]> {
  const out: BlobStat[] = [];
  for await (const s of it) out.push(s);
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

/** A stream of unknown length (no Content-Length anywhere) made of `chunk`-sized pieces. */
function unknownLength(data: Buffer, chunk: number, failAfter?: number): Readable {
  return Readable.from(
    (async function* () {
      for (let off = 0; off < data.length; off += chunk) {
        if (failAfter !== undefined && off >= failAfter) throw new Error('source exploded');
        yield data.subarray(off, off + chunk);
        await new Promise((r) => setImmediate(r));
      }
    })(),
  );
}

/** Backend-specific inspection used to check there is no leftover state. */
interface Probe {
  /** Temp files (fs) or unfinished multipart uploads (s3) left behind. */
  leftovers(): Promise<string[]>;
  /** s3 only: did the object go through multipart upload? (its ETag is "<md5>-<parts>") */
  multipartParts?(key: string): Promise<number>;
}

function contract(name: string, setup: () => Promise<{ store: BlobStore; probe: Probe; threshold: number }>) {
  describe(`${name}: BlobStore contract`, () => {
    let store: BlobStore;
    let probe: Probe;
    let threshold: number;
    const prefix = `t/${rid()}`;

    before(async () => {
      ({ store, probe, threshold } = await setup());
    });

    test('ping succeeds on a healthy store', async () => {
      await store.ping();
    });

    test('put/get/stat/delete round-trip', async () => {
      const key = `${prefix}/rt`;
      const body = Buffer.from('Subject: hi\r\n\r\nhello\r\n');
      const res = await store.put(key, body);
      assert.deepEqual(res, { key, size: body.length, sha256: sha(body) });
      assert.deepEqual(await store.stat(key), { key, size: body.length });
      assert.deepEqual(await store.getBuffer(key), body);
      const chunks: Buffer[] = [];
      for await (const c of await store.get(key)) chunks.push(c as Buffer);
      assert.deepEqual(Buffer.concat(chunks), body);
      await store.delete(key);
      assert.equal(await store.stat(key), null);
      await assert.rejects(store.get(key), BlobNotFoundError);
      assert.deepEqual(await probe.leftovers(), []);
    });

    test('empty body', async () => {
      const key = `${prefix}/empty`;
      const res = await store.put(key, Buffer.alloc(0));
      assert.equal(res.size, 0);
      assert.equal(res.sha256, sha(Buffer.alloc(0)));
      assert.equal((await store.getBuffer(key)).length, 0);
    });

    test('20 MiB object (multipart on S3), content sha256 preserved', async () => {
      const key = `${prefix}/big`;
      const body = randomBytes(20 * MiB);
      const res = await store.put(key, body);
      assert.equal(res.size, body.length);
      assert.equal(res.sha256, sha(body));
      assert.equal(sha(await store.getBuffer(key)), sha(body));
      assert.equal((await store.stat(key))?.size, body.length);
      if (probe.multipartParts) assert.equal(await probe.multipartParts(key), 3); // 8 + 8 + 4 MiB
      assert.deepEqual(await probe.leftovers(), []);
    });

    test('streamed PUT of unknown length, below and above the multipart threshold', async () => {
      for (const [label, size] of [['small', 300 * 1024 + 7], ['large', threshold + 1 * MiB + 3]] as const) {
        const key = `${prefix}/stream-${label}`;
        const body = randomBytes(size);
        const res = await store.put(key, unknownLength(body, 64 * 1024 + 1));
        assert.equal(res.size, size, label);
        assert.equal(res.sha256, sha(body), label);
        assert.equal(sha(await store.getBuffer(key)), sha(body), label);
        if (probe.multipartParts) assert.equal(await probe.multipartParts(key), label === 'small' ? 0 : 2, label);
      }
    });

    test('missing key: get/getBuffer throw BlobNotFoundError, stat is null', async () => {
      const key = `${prefix}/missing`;
      await assert.rejects(store.get(key), (e: unknown) => e instanceof BlobNotFoundError && e.code === 'BLOB_NOT_FOUND');
      await assert.rejects(store.getBuffer(key), BlobNotFoundError);
      assert.equal(await store.stat(key), null);
      // A key under a path that is itself a blob, and a key naming a "directory".
      await store.put(`${prefix}/leaf`, Buffer.from('x'));
      assert.equal(await store.stat(`${prefix}/leaf/child`), null);
      await assert.rejects(store.get(prefix), BlobNotFoundError);
    });

    test('delete of a missing key is fine (idempotent)', async () => {
      await store.delete(`${prefix}/never-existed`);
      await store.put(`${prefix}/twice`, Buffer.from('x'));
      await store.delete(`${prefix}/twice`);
      await store.delete(`${prefix}/twice`);
    });

    test('invalid keys are rejected by every operation', async () => {
      const bad = ['../x', '/abs', 'a/../../b', 'UPPER/case', 'Msg/x', '', 'a//b', 'a/', '.tmp/x', 'a/./b', 'a\\b', 'a b', 'é'];
      for (const key of bad) {
        await assert.rejects(store.put(key, Buffer.from('x')), InvalidBlobKeyError, `put ${key}`);
        await assert.rejects(store.get(key), InvalidBlobKeyError, `get ${key}`);
        await assert.rejects(store.getBuffer(key), InvalidBlobKeyError, `getBuffer ${key}`);
        await assert.rejects(store.stat(key), InvalidBlobKeyError, `stat ${key}`);
        await assert.rejects(store.delete(key), InvalidBlobKeyError, `delete ${key}`);
      }
      await assert.rejects(collect(store.list('../')), InvalidBlobKeyError);
      await assert.rejects(collect(store.list('/x')), InvalidBlobKeyError);
    });

    test('list returns what was put, filtered by prefix', async () => {
      const p = `${prefix}/list`;
      const want = [
        { key: `${p}/a/1`, size: 1 },
        { key: `${p}/a/2`, size: 2 },
        { key: `${p}/b/3`, size: 3 },
      ];
      for (const w of want) await store.put(w.key, Buffer.alloc(w.size, 0x61));
      assert.deepEqual(await collect(store.list(`${p}/`)), want);
      assert.deepEqual(await collect(store.list(`${p}/a`)), want.slice(0, 2)); // ends inside a segment
      assert.deepEqual(await collect(store.list(`${p}/b/`)), want.slice(2));
      assert.deepEqual(await collect(store.list(`${prefix}/nothing-here/`)), []);
      const all = await collect(store.list());
      for (const w of want) assert.ok(all.some((s) => s.key === w.key && s.size === w.size));
      assert.ok(all.every((s) => !s.key.startsWith('.')), 'no temp or probe files listed');
    });

    test('a source that errors mid-way: rejected with its error, no object, no leftovers', async () => {
      for (const [label, size, failAfter] of [
        ['before threshold', 2 * MiB, 1 * MiB],
        ['after multipart started', threshold + 4 * MiB, threshold + 2 * MiB],
      ] as const) {
        const key = `${prefix}/fail-${label.replace(/ /g, '-')}`;
        await assert.rejects(
          store.put(key, unknownLength(randomBytes(size), 256 * 1024, failAfter)),
          { message: 'source exploded' },
          label,
        );
        assert.equal(await store.stat(key), null, label);
        assert.deepEqual(await probe.leftovers(), [], label);
      }
    });

    test('newBlobKey keys are accepted and unique', async () => {
      const k = newBlobKey('msg', new Date(Date.UTC(2026, 10, 29)));
      assert.match(k, /^msg\/2026\/11\/29\/[0-9a-f]{32}$/);
      assertValidBlobKey(k);
      assert.notEqual(newBlobKey(), newBlobKey());
      assert.throws(() => newBlobKey('../x'), InvalidBlobKeyError);
      await store.put(k, Buffer.from('generated'));
      assert.equal((await store.getBuffer(k)).toString(), 'generated');
      await store.delete(k);
    });
  });
}

// ---------------------------------------------------------------- fs
const fsRoot = await mkdtemp(path.join(os.tmpdir(), 'mairust-blob-'));
after(() => rm(fsRoot, { recursive: true, force: true }));

contract('fs', async () => {
  const store = createBlobStore({ backend: 'fs', fs: { path: path.join(fsRoot, 'blobs') } });
  assert.ok(store instanceof FsBlobStore);
  const tmp = path.join(fsRoot, 'blobs', '.tmp');
  return {
    store,
    threshold: 8 * MiB,
    probe: { leftovers: async () => (await readdir(tmp).catch(() => [] as string[])).filter((f) => f.endsWith('.tmp')) },
  };
});

describe('fs: store unavailable', () => {
  test('root that is a file: ping and put throw BlobStoreUnavailableError', async () => {
    const file = path.join(fsRoot, 'not-a-dir');
    await writeFile(file, 'x');
    for (const root of [file, path.join(file, 'sub')]) {
      const store = new FsBlobStore({ root });
      await assert.rejects(store.ping(), BlobStoreUnavailableError);
      await assert.rejects(store.put('a/b', Buffer.from('x')), BlobStoreUnavailableError);
    }
  });
});

// ---------------------------------------------------------------- s3
const S3_ENDPOINT = process.env.MAIRUST_S3_ENDPOINT;
const s3Base = {
  region: process.env.MAIRUST_S3_REGION ?? 'us-east-1',
  accessKeyId: process.env.MAIRUST_S3_ACCESS_KEY_ID ?? 'test:tester',
  secretAccessKey: process.env.MAIRUST_S3_SECRET_ACCESS_KEY ?? 'testing',
  forcePathStyle: true,
};

describe('s3: store unavailable (closed port)', () => {
  test('every operation fails with BlobStoreUnavailableError within a few seconds', async () => {
    const store = new S3BlobStore({ ...s3Base, endpoint: 'http://127.0.0.1:1', bucket: 'nowhere', createBucket: true });
    try {
      const ops: Array<[string, () => Promise<unknown>]> = [
        ['ping', () => store.ping()],
        ['put', () => store.put('a/b', Buffer.from('x'))],
        ['get', () => store.get('a/b')],
        ['stat', () => store.stat('a/b')],
        ['delete', () => store.delete('a/b')],
        ['list', () => collect(store.list())],
      ];
      for (const [name, op] of ops) {
        const t0 = Date.now();
        await assert.rejects(op(), BlobStoreUnavailableError, name);
        assert.ok(Date.now() - t0 < 5000, `${name} took ${Date.now() - t0} ms`);
      }
    } finally {
      await store.close();
    }
  });
});

describe('s3: store unavailable (server accepts but never answers)', () => {
  test('ping gives up by its deadline, put after its retries', async () => {
    const sockets: Socket[] = [];
    const server = createServer((sock) => sockets.push(sock)); // never replies
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const store = new S3BlobStore({
      ...s3Base,
      endpoint: `http://127.0.0.1:${port}`,
      bucket: 'hung',
      requestTimeoutMs: 500,
    });
    try {
      let t0 = Date.now();
      await assert.rejects(store.ping(), BlobStoreUnavailableError);
      assert.ok(Date.now() - t0 < 2000, `ping took ${Date.now() - t0} ms`);
      t0 = Date.now();
      await assert.rejects(store.put('a/b', Buffer.from('x')), BlobStoreUnavailableError);
      assert.ok(Date.now() - t0 < 5000, `put took ${Date.now() - t0} ms`); // 3 attempts x 500 ms + backoff
    } finally {
      await store.close();
      for (const s of sockets) s.destroy();
      server.close();
    }
  });
});

if (shape !== 'cluster') {
  // The embedded shape has no S3 server; the contract runs in the cluster shape.
} else if (!S3_ENDPOINT) {
  test('s3: MAIRUST_S3_ENDPOINT must be set in the cluster shape (run scripts/s3/swift-start.sh)', () => {
    assert.fail('MAIRUST_S3_ENDPOINT is not set: the S3 tests must run in the cluster shape');
  });
} else {
  const bucket = `mairust-test-${rid()}`;
  const raw = new S3Client({
    ...s3Base,
    endpoint: S3_ENDPOINT,
    credentials: { accessKeyId: s3Base.accessKeyId, secretAccessKey: s3Base.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const opts: S3BlobStoreOptions = { ...s3Base, endpoint: S3_ENDPOINT, bucket, createBucket: true };

  after(async () => {
    // Best-effort cleanup of the per-run bucket.
    try {
      let token: string | undefined;
      do {
        const r = await raw.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
        for (const o of r.Contents ?? []) await raw.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
      await raw.send(new DeleteBucketCommand({ Bucket: bucket }));
    } catch (err) {
      console.error(`cleanup of bucket ${bucket} failed:`, err);
    }
    raw.destroy();
  });

  contract('s3', async () => {
    const store = createBlobStore({ backend: 's3', s3: opts });
    assert.ok(store instanceof S3BlobStore);
    after(() => store.close());
    return {
      store,
      threshold: 8 * MiB,
      probe: {
        leftovers: async () => {
          const r = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
          return (r.Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`);
        },
        multipartParts: async (key) => {
          const { ETag } = await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
          const m = /-(\d+)"?$/.exec(ETag ?? '');
          return m ? Number(m[1]) : 0;
        },
      },
    };
  });

  describe('s3: configuration', () => {
    test('custom threshold/part size decide single vs multipart', async () => {
      const store = new S3BlobStore({ ...opts, multipartThresholdBytes: 6 * MiB, partSizeBytes: 5 * MiB });
      after(() => store.close());
      const parts = async (key: string) => {
        const { ETag } = await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return Number(/-(\d+)"?$/.exec(ETag ?? '')?.[1] ?? 0);
      };
      await store.put('cfg/below', randomBytes(6 * MiB - 1));
      assert.equal(await parts('cfg/below'), 0);
      await store.put('cfg/at', randomBytes(6 * MiB));
      assert.equal(await parts('cfg/at'), 2); // 5 + 1 MiB
      assert.throws(() => new S3BlobStore({ ...opts, partSizeBytes: MiB }), RangeError);
    });

    test('missing bucket without createBucket: ping throws BlobStoreUnavailableError', async () => {
      const store = new S3BlobStore({ ...opts, bucket: `mairust-missing-${rid()}`, createBucket: false });
      try {
        await assert.rejects(store.ping(), BlobStoreUnavailableError);
      } finally {
        await store.close();
      }
    });

    test('wrong credentials: ping throws BlobStoreUnavailableError', async () => {
      const store = new S3BlobStore({ ...opts, secretAccessKey: 'wrong', createBucket: false });
      try {
        await assert.rejects(store.ping(), BlobStoreUnavailableError);
      } finally {
        await store.close();
      }
    });
  });
}
