/**
 * NATS JetStream for integration tests: the server runs on 127.0.0.1:4222 here and in CI
 * (MAIRUST_TEST_NATS_URL overrides it). Each suite gets its own namespace, so suites running in
 * parallel never share a stream or bucket, and removes both when it ends.
 */
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from 'nats';
import { natsNames } from '../../src/queue/nats/names.js';

export const natsTestUrl = process.env.MAIRUST_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

export interface TestNats {
  /** An admin connection of the suite (for tampering with records); closed by `drop`. */
  nc: NatsConnection;
  namespace: string;
  servers: string[];
  /** Deletes the suite's stream and bucket and closes the connection. */
  drop(): Promise<void>;
}

export async function freshNats(): Promise<TestNats> {
  const namespace = `t${randomBytes(5).toString('hex')}`;
  const nc = await connect({ servers: [natsTestUrl], name: `mairust-test-${namespace}` });
  return {
    nc,
    namespace,
    servers: [natsTestUrl],
    drop: async () => {
      const { stream, bucket } = natsNames(namespace);
      const jsm = await nc.jetstreamManager();
      for (const name of [stream, `KV_${bucket}`]) await jsm.streams.delete(name).catch(() => false);
      await nc.close();
    },
  };
}
