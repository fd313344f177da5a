/**
 * A Postfix SMTP access policy server (policy delegation, Postfix SMTPD_POLICY_README), run in its
 * own process (forked by run.ts with `--import tsx`): the peer's way of asking an external program
 * about each message. Written from the protocol description:
 *  - smtpd connects (here over TCP, `check_policy_service inet:127.0.0.1:PORT`) and sends one
 *    request as `name=value` lines, each ended by a newline, the request ended by an empty line;
 *  - the server answers `action=<what to do>` followed by an empty line; `DUNNO` means "no
 *    opinion", so the next restriction decides (here: none, so the recipient is accepted);
 *  - the connection stays open for further requests (smtpd keeps it across transactions until
 *    its idle/TTL limits), so requests are read in a loop.
 *
 * Environment: BENCH_POLICY_PORT. IPC: `{ ready: true }` once listening; on `'count'` it answers
 * `{ requests, connections }` (requests = smtpd_access_policy requests answered).
 */
import { createServer } from 'node:net';

const port = Number(process.env.BENCH_POLICY_PORT);
if (!Number.isInteger(port) || !process.send) {
  console.error('policy-server: needs BENCH_POLICY_PORT and an IPC channel');
  process.exit(2);
}

/** A request larger than this is not a policy request (Postfix sends well under 2 KiB). */
const MAX_REQUEST_BYTES = 64 * 1024;
let requests = 0;
let connections = 0;

const server = createServer((socket) => {
  connections++;
  let pending = '';
  let attrs: Map<string, string> = new Map();
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    pending += chunk;
    if (pending.length > MAX_REQUEST_BYTES) {
      socket.destroy();
      return;
    }
    // Lines end with LF; an empty line ends one request. Several requests may share a chunk.
    for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
      const line = pending.slice(0, nl).replace(/\r$/, '');
      pending = pending.slice(nl + 1);
      if (line !== '') {
        const eq = line.indexOf('=');
        if (eq > 0) attrs.set(line.slice(0, eq), line.slice(eq + 1));
        continue;
      }
      if (attrs.get('request') === 'smtpd_access_policy') requests++;
      attrs = new Map();
      socket.write('action=DUNNO\n\n');
    }
  });
  socket.on('error', () => socket.destroy());
});

process.on('message', (m) => {
  if (m === 'count') process.send!({ requests, connections });
});
// The benchmark went away: stop at once (smtpd may still hold idle connections open).
process.on('disconnect', () => process.exit(0));
server.listen(port, '127.0.0.1', () => process.send!({ ready: true }));
