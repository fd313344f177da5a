import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from '../../src/observability/metrics.js';

const SPEC_NAMES = [
  'mairust_smtp_connections_total',
  'mairust_smtp_messages_total',
  'mairust_smtp_duration_seconds',
  'mairust_api_requests_total',
  'mairust_api_duration_seconds',
  'mairust_queue_length',
  'mairust_queue_jobs_total',
  'mairust_storage_bytes',
];

describe('metrics', () => {
  test('every SPEC §12 metric is registered, in a registry of its own', async () => {
    const a = createMetrics();
    const b = createMetrics(); // a second one must not collide (no global registry)
    const { contentType, body } = await a.render();
    assert.match(contentType, /^text\/plain; version=0\.0\.4/);
    for (const name of SPEC_NAMES) assert.match(body, new RegExp(`^# TYPE ${name} `, 'm'), name);
    a.smtpConnections.inc({ listener: 'mx' });
    assert.doesNotMatch((await b.render()).body, /mairust_smtp_connections_total\{/);
  });

  test('counters and histograms show the values recorded', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.smtpConnections.inc({ listener: 'mx' });
    m.smtpConnections.inc({ listener: 'mx' });
    m.smtpMessages.inc({ listener: 'submission', result: 'accepted' });
    m.smtpDuration.observe({ listener: 'mx' }, 0.3);
    m.apiRequests.inc({ method: 'GET', route: '/api/v1/users/:id', status: '200' });
    m.apiDuration.observe({ method: 'GET', route: '/api/v1/users/:id' }, 0.15);
    m.queueJobs.inc({ queue: 'outbound', result: 'done' });
    const { body } = await m.render();
    assert.match(body, /^mairust_smtp_connections_total\{listener="mx"\} 2$/m);
    assert.match(body, /^mairust_smtp_messages_total\{listener="submission",result="accepted"\} 1$/m);
    assert.match(body, /^mairust_smtp_duration_seconds_bucket\{le="0\.5",listener="mx"\} 1$/m);
    assert.match(body, /^mairust_smtp_duration_seconds_bucket\{le="0\.25",listener="mx"\} 0$/m);
    assert.match(body, /^mairust_api_requests_total\{method="GET",route="\/api\/v1\/users\/:id",status="200"\} 1$/m);
    // The 0.2 s bucket exists so "API p95 < 200 ms" (SPEC §12) can be read directly.
    assert.match(body, /^mairust_api_duration_seconds_bucket\{le="0\.2",method="GET",route="\/api\/v1\/users\/:id"\} 1$/m);
    assert.match(body, /^mairust_queue_jobs_total\{queue="outbound",result="done"\} 1$/m);
    assert.doesNotMatch(body, /^process_cpu/m, 'defaultMetrics: false leaves runtime metrics out');
  });

  test('runtime metrics keep their conventional names', async () => {
    const { body } = await createMetrics().render();
    assert.match(body, /^process_cpu_user_seconds_total /m);
    assert.match(body, /^nodejs_heap_size_used_bytes /m);
  });

  test('queue length is read from its source at scrape time; emptied statuses disappear', async () => {
    const m = createMetrics({ defaultMetrics: false });
    let samples = [
      { queue: 'outbound', status: 'waiting', count: 3 },
      { queue: 'outbound', status: 'dead', count: 1 },
    ];
    m.setQueueStatsSource(async () => samples);
    let body = (await m.render()).body;
    assert.match(body, /^mairust_queue_length\{queue="outbound",status="waiting"\} 3$/m);
    assert.match(body, /^mairust_queue_length\{queue="outbound",status="dead"\} 1$/m);
    samples = [{ queue: 'outbound', status: 'waiting', count: 7 }];
    body = (await m.render()).body;
    assert.match(body, /^mairust_queue_length\{queue="outbound",status="waiting"\} 7$/m);
    assert.doesNotMatch(body, /status="dead"/);
  });

  test('storage bytes come from their source', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.setStorageBytesSource(async () => 123456);
    assert.match((await m.render()).body, /^mairust_storage_bytes 123456$/m);
  });

  test('a failing or hung source does not break the scrape; it is counted', async () => {
    const m = createMetrics({ defaultMetrics: false, sourceTimeoutMs: 100 });
    m.setQueueStatsSource(async () => {
      throw new Error('database is down');
    });
    m.setStorageBytesSource(() => new Promise<number>(() => {})); // never settles
    const t0 = Date.now();
    const { body } = await m.render();
    assert.ok(Date.now() - t0 < 5000, 'the hung source was cut off by its timeout');
    assert.match(body, /^mairust_metrics_source_errors_total\{source="queue_length"\} 1$/m);
    assert.match(body, /^mairust_metrics_source_errors_total\{source="storage_bytes"\} 1$/m);
    assert.doesNotMatch(body, /^mairust_queue_length\{/m);
    assert.match(body, /^mairust_storage_bytes nan$/im, 'unknown, not a misleading 0');
    assert.match(body, /^# TYPE mairust_smtp_connections_total counter$/m, 'the rest of the scrape is intact');
  });
});
