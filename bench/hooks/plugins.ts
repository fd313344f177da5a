/**
 * Set-up of the two plugins bench/hooks measures, done the way an operator does it (docs/plugins.md
 * "Installing and running"): write the plugin directory, then through the CLI `plugin install`
 * (which prints the signing secret once), `plugin approve` (with `--allow-private`: the endpoint is
 * on loopback), `plugin enable` and `hook create` for one global `pre_receive` hook with its defaults
 * (SPEC §6: timeout 2 s, on_timeout tempfail, on_error allow, strict breaker). It all runs before
 * `mairust serve` starts (the `setup` step of bench/smtp/mairust.ts).
 */
import { chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, runCli } from '../../test/support/server-process.js';
import { startHelper, type HelperProcess } from './helper-process.js';

/** How many calls a plugin has answered `allow` to so far, and how many it refused. */
export interface PluginCounter {
  answered(): Promise<{ answered: number; refused: number }>;
  close(): Promise<void>;
}

/** A MaiRust set-up step (bench/smtp/mairust.ts `setup`) plus the counter it makes available once run. */
export interface PluginBench {
  pluginId: string;
  /** config.yaml lines the plugin needs. */
  configLines: string[];
  setup(ctx: { env: Record<string, string>; dir: string }): Promise<void>;
  /** Available after `setup` ran. */
  counter(): PluginCounter;
  /** Closes the hook's circuit breaker through the CLI (the state lives in the database, shared with `serve`). */
  resetBreaker(): Promise<void>;
}

async function cli(args: string[], env: Record<string, string>): Promise<string> {
  const r = await runCli(args, env);
  if (r.code !== 0) throw new Error(`mairust ${args.join(' ')} failed (${r.code}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

function manifest(id: string, name: string, entry: string[], limits: string[] = []): string {
  return [
    `id = "${id}"`,
    `name = "${name}"`,
    'version = "1.0.0"',
    'author = "MaiRust bench"',
    'description = "Answers allow to every pre_receive call (bench/hooks)."',
    'license = "Apache-2.0"',
    '[compat]',
    'mairust_min = "0.1.0"',
    '[entry]',
    'type = "hook"',
    ...entry,
    '[hooks]',
    'on = ["pre_receive"]',
    // No permissions: the envelope, ids and size are always in the payload, and `allow` needs none.
    '[permissions]',
    ...limits,
    '',
  ].join('\n');
}

/** install → approve → enable → one global pre_receive hook; returns the signing secret. */
async function installWithHook(env: Record<string, string>, pluginDir: string, pluginId: string, hookId: string, workDir: string, hookExtra: Record<string, unknown> = {}): Promise<string> {
  const installed = JSON.parse(await cli(['--json', 'plugin', 'install', pluginDir], env)) as { secret?: string };
  if (!installed.secret) throw new Error('plugin install printed no signing secret');
  await cli(['plugin', 'approve', pluginId, '--allow-private'], env);
  await cli(['plugin', 'enable', pluginId], env);
  const hookFile = join(workDir, `${hookId}.json`);
  writeFileSync(hookFile, JSON.stringify({ id: hookId, type: 'pre_receive', plugin_id: pluginId, ...hookExtra }));
  await cli(['hook', 'create', '--file', hookFile], env);
  return installed.secret;
}

/**
 * An HTTP plugin: bench/hooks/plugin-server.ts in its own process on a free loopback port; it
 * verifies every call's signature with the secret `plugin install` printed and counts the calls.
 */
export function httpPlugin(workDir: string): PluginBench {
  const pluginId = 'com.example.bench-http';
  let helper: HelperProcess<{ verified: number; refused: number }> | null = null;
  let serverEnv: Record<string, string> = {};
  return {
    pluginId,
    resetBreaker: () => cli(['hook', 'reset-breaker', 'bench-http'], serverEnv).then(() => undefined),
    configLines: ['plugins:', "  egress_allowlist: ['127.0.0.1']"],
    async setup({ env }) {
      const port = await freePort();
      const dir = join(workDir, 'http-plugin');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'plugin.toml'), manifest(pluginId, 'Bench HTTP plugin', ['protocol = "http"', `endpoint = "http://127.0.0.1:${port}/hook"`]));
      serverEnv = env;
      const secret = await installWithHook(env, dir, pluginId, 'bench-http', workDir);
      helper = await startHelper('./plugin-server.ts', { BENCH_PLUGIN_PORT: String(port), BENCH_PLUGIN_ID: pluginId, BENCH_PLUGIN_SECRET: secret });
    },
    counter() {
      const h = helper;
      if (!h) throw new Error('the HTTP plugin was not set up');
      return {
        async answered() {
          const c = await h.count();
          return { answered: c.verified, refused: c.refused };
        },
        close: () => h.close(),
      };
    },
  };
}

/**
 * A script plugin: a node script MaiRust starts for every call (SPEC §7 "script"): it reads the
 * payload from stdin, parses it, appends one byte to a count file (O_APPEND: concurrent calls do
 * not lose each other's byte) and writes the `allow` answer.
 */
export function scriptPlugin(workDir: string, opts: { timeoutMs?: number } = {}): PluginBench {
  const pluginId = 'com.example.bench-script';
  const countFile = join(workDir, 'script-plugin-calls');
  let ready = false;
  let serverEnv: Record<string, string> = {};
  return {
    pluginId,
    resetBreaker: () => cli(['hook', 'reset-breaker', 'bench-script'], serverEnv).then(() => undefined),
    configLines: [],
    async setup({ env }) {
      const dir = join(workDir, 'script-plugin');
      mkdirSync(dir, { recursive: true });
      writeFileSync(countFile, '');
      const script = [
        '#!/usr/bin/env node',
        "import { appendFileSync } from 'node:fs';",
        `const COUNT_FILE = ${JSON.stringify(countFile)};`,
        `const PLUGIN_ID = ${JSON.stringify(pluginId)};`,
        'const chunks = [];',
        "process.stdin.on('data', (c) => chunks.push(c));",
        "process.stdin.on('end', () => {",
        "  const payload = JSON.parse(Buffer.concat(chunks).toString('utf8'));",
        "  if (payload.hook_type !== 'pre_receive') process.exit(3);",
        "  appendFileSync(COUNT_FILE, '.');",
        "  process.stdout.write(JSON.stringify({ plugin_id: PLUGIN_ID, action: 'allow' }) + '\\n');",
        '});',
        '',
      ].join('\n');
      writeFileSync(join(dir, 'allow.mjs'), script);
      chmodSync(join(dir, 'allow.mjs'), 0o755);
      // The echo example's memory limit (RLIMIT_AS must leave room for Node.js's ≈ 1 GiB
      // reservation); wall_time_ms keeps its default (5 s), so the hook's timeout is the limit.
      writeFileSync(
        join(dir, 'plugin.toml'),
        manifest(pluginId, 'Bench script plugin', ['protocol = "script"', 'command = ["./allow.mjs"]'], ['[limits]', 'memory_mb = 1536', 'cpu_ms = 1000']),
      );
      serverEnv = env;
      // Without timeout_ms the hook has the SPEC §6 default for pre_receive (2 s).
      await installWithHook(env, dir, pluginId, 'bench-script', workDir, opts.timeoutMs ? { timeout_ms: opts.timeoutMs } : {});
      ready = true;
    },
    counter() {
      if (!ready) throw new Error('the script plugin was not set up');
      return {
        async answered() {
          return { answered: existsSync(countFile) ? statSync(countFile).size : 0, refused: 0 };
        },
        close: async () => {},
      };
    },
  };
}
