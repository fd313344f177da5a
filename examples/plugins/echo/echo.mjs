#!/usr/bin/env node
// The echo plugin (script protocol, SPEC §7): one JSON payload on stdin, one log line on stderr
// (MaiRust keeps the last 8 KiB of stderr for the plugin's log), one JSON answer on stdout.
// No dependencies: only what Node.js brings.

const PLUGIN_ID = 'com.example.echo';

/** One line for the log: control characters from the payload must not forge extra log lines. */
function clean(value) {
  return String(value).replace(/[\u0000-\u001f\u007f]/g, '?');
}

const chunks = [];
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('end', () => {
  let payload;
  try {
    payload = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    // A non-zero exit is an error for MaiRust: the hook's on_error decides (default allow).
    process.stderr.write(`echo: the payload is not JSON: ${clean(err.message)}\n`);
    process.exit(2);
  }
  const envelope = payload.envelope ?? {};
  const to = Array.isArray(envelope.to) ? envelope.to.join(',') : '';
  process.stderr.write(
    `echo: ${clean(payload.hook_type)} message=${clean(payload.message_id)} from=<${clean(envelope.from ?? '')}> to=${clean(to)}\n`,
  );
  process.stdout.write(`${JSON.stringify({ plugin_id: PLUGIN_ID, action: 'allow' })}\n`);
});
