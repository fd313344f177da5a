// S3-compatible BlobStore (AWS S3, OpenStack Swift + s3api, Ceph radosgw, MinIO...).
// Requests are SigV4-signed by @aws-sdk/client-s3; large bodies use multipart upload
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html).
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import {
  assertValidBlobKey,
  assertValidBlobPrefix,
  assertValidRange,
  BlobNotFoundError,
  BlobStoreUnavailableError,
  HashingSource,
  InvalidBlobKeyError,
  readAll,
  type BlobBody,
  type BlobStat,
  type BlobStore,
  type PutResult,
} from './blob-store.js';

export interface S3BlobStoreOptions {
  /** e.g. "http://127.0.0.1:8090"; omit for AWS itself. */
  endpoint?: string;
  bucket: string;
  region: string;
  /** Omit both to use the SDK's default credential chain (env, profile, instance role). */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Path-style URLs (http://host/bucket/key). Default: true when `endpoint` is set. */
  forcePathStyle?: boolean;
  /** Bodies of at least this many bytes go multipart. Default 8 MiB (SPEC §4). */
  multipartThresholdBytes?: number;
  /** Multipart part size. Default 8 MiB; S3 requires >= 5 MiB for all but the last part. */
  partSizeBytes?: number;
  /**
   * SDK flexible checksums. WHEN_SUPPORTED makes the SDK send streamed bodies as aws-chunked with
   * a CRC32 trailer, which Swift answers with 501 and Ceph with 411 (TEST-PEERS.md), hence the default.
   */
  checksumMode?: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';
  /**
   * Socket inactivity timeout per request attempt. Default 10 s: a healthy store never goes
   * silent that long, and with retries a hung store still fails within ~30 s, well inside the
   * 10-minute end-of-data timeout SMTP clients use (RFC 5321 §4.5.3.2.6). ping() uses at most 5 s.
   */
  requestTimeoutMs?: number;
  /** TCP connect timeout. Default 3 s, so a down store fails fast. */
  connectTimeoutMs?: number;
  /** Total attempts per request including the first (SDK standard retry, jittered backoff). Default 3. */
  maxAttempts?: number;
  /** Create the bucket on first use if it does not exist (tests, dev). */
  createBucket?: boolean;
}

const MiB = 1024 * 1024;
const MIN_PART_SIZE = 5 * MiB; // https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN',
  'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'ERR_SOCKET_CONNECTION_TIMEOUT',
]);

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

export class S3BlobStore implements BlobStore {
  readonly kind = 's3' as const;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly threshold: number;
  private readonly partSize: number;
  private readonly createBucket: boolean;
  private readonly region: string;
  private readonly requestTimeoutMs: number;
  private bucketReady: Promise<void> | undefined;

  constructor(opts: S3BlobStoreOptions) {
    this.bucket = opts.bucket;
    this.region = opts.region;
    this.threshold = opts.multipartThresholdBytes ?? 8 * MiB;
    this.partSize = opts.partSizeBytes ?? 8 * MiB;
    this.createBucket = opts.createBucket ?? false;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    if (this.partSize < MIN_PART_SIZE) throw new RangeError(`partSizeBytes must be >= ${MIN_PART_SIZE}`);
    if (this.threshold < 0) throw new RangeError('multipartThresholdBytes must be >= 0');
    const checksum = opts.checksumMode ?? 'WHEN_REQUIRED';
    this.client = new S3Client({
      region: opts.region,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle ?? opts.endpoint !== undefined,
      ...(opts.accessKeyId && opts.secretAccessKey
        ? { credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } }
        : {}),
      requestChecksumCalculation: checksum,
      responseChecksumValidation: checksum,
      maxAttempts: opts.maxAttempts ?? 3,
      // Passed as NodeHttpHandler options. socketTimeout is an inactivity timeout, so it also
      // bounds a stalled body stream without capping the duration of a large transfer.
      requestHandler: {
        connectionTimeout: opts.connectTimeoutMs ?? 3000,
        socketTimeout: this.requestTimeoutMs,
      },
    });
  }

  /** Maps SDK/network errors onto the port's errors; `key` set means 404 is "no such blob". */
  private mapError(err: unknown, key?: string): unknown {
    if (err instanceof BlobNotFoundError || err instanceof BlobStoreUnavailableError || err instanceof InvalidBlobKeyError) {
      return err;
    }
    const e = (err ?? {}) as SdkErrorShape;
    const status = e.$metadata?.httpStatusCode;
    if (e.name === 'NoSuchBucket') {
      return new BlobStoreUnavailableError(`s3 bucket ${this.bucket} does not exist`, { cause: err });
    }
    // GetObject reports NoSuchKey; HeadObject has no body so only the status (name "NotFound").
    if (key !== undefined && (e.name === 'NoSuchKey' || e.name === 'NotFound' || status === 404)) {
      return new BlobNotFoundError(key, { cause: err });
    }
    const network = status === undefined && (NETWORK_CODES.has(e.code ?? '') || e.name === 'TimeoutError');
    // 5xx and 429/503 SlowDown are server-side/transient (S3 error responses doc).
    if (network || (status !== undefined && (status >= 500 || status === 429))) {
      return new BlobStoreUnavailableError(`s3 blob store unavailable: ${e.name ?? ''} ${e.message ?? ''}`.trim(), {
        cause: err,
      });
    }
    return err;
  }

  private async ready(): Promise<void> {
    if (!this.createBucket) return;
    this.bucketReady ??= this.ensureBucket().catch((err) => {
      this.bucketReady = undefined; // retry on the next call: recover without restart (SPEC §4)
      throw err;
    });
    return this.bucketReady;
  }

  private async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return;
    } catch (err) {
      if ((err as SdkErrorShape).$metadata?.httpStatusCode !== 404) throw this.mapError(err);
    }
    try {
      await this.client.send(
        new CreateBucketCommand({
          Bucket: this.bucket,
          // Outside us-east-1, S3 requires the region as LocationConstraint (CreateBucket API docs).
          ...(this.region !== 'us-east-1' ? { CreateBucketConfiguration: { LocationConstraint: this.region as never } } : {}),
        }),
      );
    } catch (err) {
      const name = (err as SdkErrorShape).name;
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw this.mapError(err);
    }
  }

  async put(key: string, body: BlobBody): Promise<PutResult> {
    assertValidBlobKey(key);
    const src = new HashingSource(body);
    const it = src.chunks();
    try {
      await this.ready();
      // Read up to the threshold: a body that ends before it is sent as one PutObject with a
      // known Content-Length (no aws-chunked encoding); otherwise, even of unknown length, it
      // goes multipart, which only needs each part's length.
      const head: Buffer[] = [];
      let headLen = 0;
      let ended = false;
      while (headLen < this.threshold) {
        const r = await it.next();
        if (r.done) {
          ended = true;
          break;
        }
        head.push(r.value);
        headLen += r.value.length;
      }
      if (ended) {
        const buf = Buffer.concat(head, headLen);
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: buf,
            ContentLength: buf.length,
            // End-to-end integrity: the server rejects the PUT if the bytes differ (RFC 1864, S3 PutObject docs).
            ContentMD5: createHash('md5').update(buf).digest('base64'),
          }),
        );
      } else {
        const rest = async function* (): AsyncGenerator<Buffer> {
          yield* head;
          head.length = 0; // let the buffered prefix be collected once handed over
          yield* it;
        };
        const upload = new Upload({
          client: this.client,
          params: { Bucket: this.bucket, Key: key, Body: Readable.from(rest()) },
          partSize: this.partSize,
          queueSize: 2, // bounds memory to ~2 parts per upload
          leavePartsOnError: false, // abort the multipart upload so no parts linger
        });
        await upload.done();
      }
    } catch (err) {
      await it.return(undefined).catch(() => undefined);
      throw src.sourceFailed ? src.sourceError : this.mapError(err);
    }
    return { key, size: src.size, sha256: src.digest() };
  }

  async get(key: string): Promise<Readable> {
    assertValidBlobKey(key);
    try {
      await this.ready();
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!(res.Body instanceof Readable)) throw new Error('unexpected S3 body type (expected a Node Readable)');
      return res.Body;
    } catch (err) {
      throw this.mapError(err, key);
    }
  }

  async getRangeBuffer(key: string, start: number, end: number): Promise<Buffer> {
    return readAll(await this.getRange(key, start, end));
  }

  async getRange(key: string, start: number, end: number): Promise<Readable> {
    assertValidBlobKey(key);
    assertValidRange(start, end);
    if (start === end) {
      // An HTTP byte range cannot be empty (RFC 9110 §14.1.1: last-pos >= first-pos), so
      // `bytes=x-(x-1)` would be ignored and the whole object sent; only the key's existence is checked.
      if ((await this.stat(key)) === null) throw new BlobNotFoundError(key);
      return Readable.from([]);
    }
    try {
      await this.ready();
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${start}-${end - 1}` }));
      if (!(res.Body instanceof Readable)) throw new Error('unexpected S3 body type (expected a Node Readable)');
      return res.Body;
    } catch (err) {
      // 416: the range starts at or past the end of the object (RFC 9110 §15.5.17); as with a
      // file, the bytes that exist in the range are none.
      const e = err as SdkErrorShape;
      if (e.$metadata?.httpStatusCode === 416 || e.name === 'InvalidRange') return Readable.from([]);
      throw this.mapError(err, key);
    }
  }

  async getBuffer(key: string): Promise<Buffer> {
    return readAll(await this.get(key));
  }

  async stat(key: string): Promise<BlobStat | null> {
    assertValidBlobKey(key);
    try {
      await this.ready();
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { key, size: res.ContentLength ?? 0 };
    } catch (err) {
      // Note: AWS answers 403 (not 404) for a missing key when the credentials lack
      // s3:ListBucket (HeadObject docs); grant it, or this surfaces as an error.
      const mapped = this.mapError(err, key);
      if (mapped instanceof BlobNotFoundError) return null;
      throw mapped;
    }
  }

  async delete(key: string): Promise<void> {
    assertValidBlobKey(key);
    try {
      await this.ready();
      // S3 answers 204 for a missing key too; some servers answer 404, which is also fine.
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      const mapped = this.mapError(err, key);
      if (!(mapped instanceof BlobNotFoundError)) throw mapped;
    }
  }

  async *list(prefix = ''): AsyncIterable<BlobStat> {
    assertValidBlobPrefix(prefix);
    await this.ready().catch((err) => {
      throw this.mapError(err);
    });
    let token: string | undefined;
    do {
      let res;
      try {
        res = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix || undefined, ContinuationToken: token }),
        );
      } catch (err) {
        throw this.mapError(err);
      }
      for (const o of res.Contents ?? []) if (o.Key) yield { key: o.Key, size: o.Size ?? 0 };
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
  }

  async ping(): Promise<void> {
    // A health check must answer quickly even when the server accepts connections but hangs.
    const deadlineMs = Math.min(this.requestTimeoutMs, 5000);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BlobStoreUnavailableError(`s3 ping timed out after ${deadlineMs} ms`)), deadlineMs);
    });
    try {
      const check = (async () => {
        await this.ready();
        await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: AbortSignal.timeout(deadlineMs) });
      })();
      check.catch(() => undefined); // the deadline may win; don't leave a rejection unhandled
      await Promise.race([check, deadline]);
    } catch (err) {
      // Any failure (incl. 403 bad credentials, 404 missing bucket) means the store is unusable.
      const mapped = this.mapError(err);
      if (mapped instanceof BlobStoreUnavailableError) throw mapped;
      const e = err as SdkErrorShape;
      throw new BlobStoreUnavailableError(`s3 ping failed: ${e.name ?? ''} ${e.message ?? ''}`.trim(), { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
