/**
 * The HTTP plugin of bench/hooks, run in its own process (forked by run.ts with `--import tsx`):
 * a node:http server on 127.0.0.1 that does what a real plugin must do for every call (SPEC §6
 * "Signing", docs/plugins.md "HTTP plugins") — read the raw body, verify the signature with the
 * SDK's `verifyRequest` (plugin id, ±300 s timestamp, constant-time HMAC), parse the JSON — and
 * answers `{"plugin_id": …, "action": "allow"}`. A request that fails verification gets 401.
 *
 * Environment: BENCH_PLUGIN_PORT, BENCH_PLUGIN_ID, BENCH_PLUGIN_SECRET.
 * IPC (process.send): `{ ready: true }` once listening; on the message `'count'` it answers
 * `{ verified, refused }`, so the benchmark can check that every message reached the plugin.
 */
import { createServer } from 'node:http';
import { verifyRequest } from '../../sdk/src/verify.js';

const port = Number(process.env.BENCH_PLUGIN_PORT);
const pluginId = process.env.BENCH_PLUGIN_ID ?? '';
const secret = process.env.BENCH_PLUGIN_SECRET ?? '';
if (!Number.isInteger(port) || !pluginId || !secret || !process.send) {
  console.error('plugin-server: needs BENCH_PLUGIN_PORT, BENCH_PLUGIN_ID, BENCH_PLUGIN_SECRET and an IPC channel');
  process.exit(2);
}

let verified = 0;
let refused = 0;
const answer = JSON.stringify({ plugin_id: pluginId, action: 'allow' });

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const check = verifyRequest({ secrets: [secret], pluginId, headers: req.headers, body });
    let payload: { hook_type?: unknown } | null = null;
    if (check.ok) {
      try {
        payload = JSON.parse(body.toString('utf8')) as { hook_type?: unknown };
      } catch {
        payload = null;
      }
    }
    if (!check.ok || payload?.hook_type !== 'pre_receive') {
      refused++;
      res.writeHead(401, { 'content-type': 'text/plain' }).end(check.ok ? 'not a pre_receive payload' : check.reason);
      return;
    }
    verified++;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) }).end(answer);
  });
});

process.on('message', (m) => {
  if (m === 'count') process.send!({ verified, refused });
});
// The benchmark went away: stop at once (open keep-alive/policy connections would hold close()).
process.on('disconnect', () => process.exit(0));
server.listen(port, '127.0.0.1', () => process.send!({ ready: true }));
