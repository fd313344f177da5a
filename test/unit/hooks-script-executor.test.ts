/**
 * The `script` plugin executor (SPEC §7 "Protocols"): a real child process per case, with the
 * small node scripts of test/fixtures/plugins/scripts. No database.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { limitedCommand, MAX_STDERR_BYTES, PRLIMIT_PATH, runScript, scriptEnvironment } from '../../src/hooks/executors/script.js';
import { MAX_REPLY_BYTES } from '../../src/hooks/executors/types.js';

const scripts = fileURLToPath(new URL('../fixtures/plugins/scripts/', import.meta.url));
const node = process.execPath;
const cmd = (name: string) => [node, join(scripts, name)];
/** Node.js reserves a lot of address space: below ~1 GiB of RLIMIT_AS it does not start. */
const GIB = 1024 * 1024 * 1024;

/** Alive = exists and is not a zombie waiting to be reaped (PID 1 of a container may not reap). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitDead(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
  return !alive(pid);
}

describe('script executor', () => {
  let cwd: string;
  before(() => {
    cwd = mkdtempSync(join(tmpdir(), 'mairust-plugin-'));
  });
  after(() => rmSync(cwd, { recursive: true, force: true }));

  it('round trip: payload on stdin, one JSON reply on stdout, byte counts and stderr kept', async () => {
    const payload = { hook_type: 'pre_receive', message_id: 'm1', envelope: { from: 'a@example.com', to: ['b@example.org'] }, text: 'héllo' };
    const r = await runScript({ command: cmd('echo.mjs'), cwd, payload, wallTimeMs: 5000 });
    assert.equal(r.ok, true, JSON.stringify(r));
    if (!r.ok) return;
    const reply = r.response as { action: string; payload: unknown; cwd: string };
    assert.equal(reply.action, 'allow');
    assert.deepEqual(reply.payload, payload);
    assert.equal(reply.cwd, cwd);
    assert.equal(r.bytesOut, Buffer.byteLength(JSON.stringify(payload)));
    assert.ok(r.bytesIn > r.bytesOut);
    assert.equal(r.stderr, 'echo: payload received\n');
  });

  it('runs with a clean environment: no variable of the parent is visible', async () => {
    process.env.MAIRUST_TEST_PARENT_SECRET = 'do-not-leak';
    try {
      const r = await runScript({ command: cmd('echo.mjs'), cwd, payload: {}, wallTimeMs: 5000, env: { PLUGIN_MODE: 'strict', PATH: '/evil' } });
      assert.equal(r.ok, true, JSON.stringify(r));
      if (!r.ok) return;
      const env = (r.response as { env: Record<string, string> }).env;
      assert.equal(env.MAIRUST_TEST_PARENT_SECRET, undefined);
      // The fixed three cannot be overridden by the caller's variables.
      assert.deepEqual(
        Object.fromEntries(Object.entries(env).filter(([k]) => ['PATH', 'LANG', 'HOME', 'PLUGIN_MODE'].includes(k))),
        { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: cwd, PLUGIN_MODE: 'strict' },
      );
      // Nothing else but what the runtime itself may add.
      const unexpected = Object.keys(env).filter((k) => !['PATH', 'LANG', 'HOME', 'PLUGIN_MODE'].includes(k) && !k.startsWith('NODE_'));
      assert.deepEqual(unexpected, []);
    } finally {
      delete process.env.MAIRUST_TEST_PARENT_SECRET;
    }
    assert.deepEqual(scriptEnvironment('/p', { HOME: '/x', A: '1' }), { A: '1', PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: '/p' });
  });

  it('a slow script is killed at the wall time, with the processes it started', async () => {
    const r = await runScript({ command: cmd('slow.mjs'), cwd, payload: {}, wallTimeMs: 600 });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.kind, 'timeout');
    assert.equal(r.message, 'no reply within 600 ms; the process group was killed');
    assert.equal(r.stderr, 'slow: helper started\n');
    const pidFile = join(cwd, 'helper.pid');
    assert.ok(existsSync(pidFile), 'the slow script started its helper');
    const helper = Number(readFileSync(pidFile, 'utf8'));
    assert.ok(await waitDead(helper), `helper process ${helper} survived the timeout`);
  });

  it('a cancelled call kills the process group and reports a timeout', async () => {
    const ac = new AbortController();
    const pending = runScript({ command: cmd('slow.mjs'), cwd, payload: {}, wallTimeMs: 30_000, signal: ac.signal });
    setTimeout(() => ac.abort(), 300);
    const r = await pending;
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.message, 'the call was cancelled; the process group was killed');
  });

  it('a crash (non-zero exit) is an error, stderr kept for the log', async () => {
    const r = await runScript({ command: cmd('crash.mjs'), cwd, payload: {}, wallTimeMs: 5000 });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.kind, 'error');
    assert.equal(r.message, 'exited with status 3');
    assert.equal(r.stderr, 'crash: something went wrong\n');
  });

  it('a reply that is not one JSON value is an error', async () => {
    const r = await runScript({ command: cmd('bad-json.mjs'), cwd, payload: {}, wallTimeMs: 5000 });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.kind, 'error');
    assert.match(r.message, /^reply on stdout is not one JSON value: /);
  });

  it('more than 1 MiB on stdout is an error and stops the script', async () => {
    const r = await runScript({ command: cmd('huge.mjs'), cwd, payload: {}, wallTimeMs: 10_000 });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.kind, 'error');
    assert.equal(r.message, `reply exceeds ${MAX_REPLY_BYTES} bytes on stdout; the process group was killed`);
    assert.ok(r.bytesIn > MAX_REPLY_BYTES);
  });

  it('a memory hog is stopped by the memory limit (prlimit when present)', async () => {
    const r = await runScript({ command: cmd('memhog.mjs'), cwd, payload: {}, wallTimeMs: 10_000, memoryBytes: GIB });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.kind, 'error');
    assert.match(r.message, new RegExp(`^(exited with status \\d+ \\(the memory limit is ${GIB} bytes\\)|killed by SIG[A-Z]+)$`));
  });

  it('the ulimit fallback (no prlimit) stops a memory hog too', async () => {
    const r = await runScript({ command: cmd('memhog.mjs'), cwd, payload: {}, wallTimeMs: 10_000, memoryBytes: GIB, limitMethod: 'ulimit' });
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.kind, 'error');
    // And a well-behaved script still answers under the same fallback.
    const ok = await runScript({ command: cmd('echo.mjs'), cwd, payload: { a: 1 }, wallTimeMs: 5000, memoryBytes: 2 * GIB, cpuMs: 5000, limitMethod: 'ulimit' });
    assert.equal(ok.ok, true, JSON.stringify(ok));
  });

  it('builds the limited command line', () => {
    assert.deepEqual(limitedCommand(['/bin/plugin', 'a b'], {}, 'prlimit'), { file: '/bin/plugin', args: ['a b'] });
    assert.deepEqual(limitedCommand(['/bin/plugin', 'a b'], { memoryBytes: 1000, cpuMs: 1500 }, 'prlimit'), {
      file: PRLIMIT_PATH,
      args: ['--as=1000', '--cpu=2', '--', '/bin/plugin', 'a b'],
    });
    assert.deepEqual(limitedCommand(['/bin/plugin', '$HOME'], { memoryBytes: 4096 * 1024, cpuMs: 1 }, 'ulimit'), {
      file: '/bin/sh',
      args: ['-c', 'ulimit -v 4096 && ulimit -t 1 && exec "$0" "$@"', '/bin/plugin', '$HOME'],
    });
    assert.throws(() => limitedCommand([], {}, 'prlimit'), /command is empty/);
  });

  it('a command that does not exist is an error, not a throw', async () => {
    const r = await runScript({ command: [join(cwd, 'no-such-plugin')], cwd, payload: {}, wallTimeMs: 5000 });
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.message, `cannot start ${join(cwd, 'no-such-plugin')}: ENOENT`);
  });

  it('keeps only the last 8 KiB of stderr', async () => {
    const r = await runScript({
      command: [node, '-e', `process.stderr.write('a'.repeat(20000) + 'END'); console.log('{}')`],
      cwd,
      payload: {},
      wallTimeMs: 5000,
    });
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.stderr?.length, MAX_STDERR_BYTES);
    assert.ok(r.stderr?.endsWith('aEND'));
  });
});
