/**
 * `mairust hook …` (SPEC §6 "Management"): the operations of `/api/v1/admin/hooks` for an operator
 * on the server — list, show, create and replace from a JSON file, delete, reset a circuit breaker
 * (audited), and run a hook once on the sample message. Changes are audited with actor `cli`.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { cliActor, writeAudit } from '../security/audit.js';
import { HOOK_TYPES, type HookType } from '../hooks/types.js';
import type { StoredHook } from '../hooks/runtime-types.js';
import type { HookSystem } from '../app/hooks.js';
import type { CliContext } from './cli-context.js';
import { CliUsageError, withHookSystem } from './plugin.js';
import { tenantIdOf } from './tenant.js';

/** Largest hook file read (a hook config is a few hundred bytes; this leaves room for long regexes). */
const MAX_FILE_BYTES = 64 * 1024;

async function readJsonFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  } catch (err) {
    throw new CliUsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  if (Buffer.byteLength(text) > MAX_FILE_BYTES) throw new CliUsageError(`${file} is larger than ${MAX_FILE_BYTES} bytes`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new CliUsageError(`${file} is not valid JSON`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new CliUsageError(`${file} must hold one JSON object (a hook config)`);
  return v as Record<string, unknown>;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

// Loaded when a command runs (see plugin.ts): the API's views and the hook store's errors.
const routes = () => import('../http/api/routes/hooks.js');

async function notFound(id: string): Promise<Error> {
  return new (await import('../hooks/store.js')).HookNotFoundError(id);
}

async function full(sys: HookSystem, h: StoredHook) {
  const { breakerView } = await routes();
  const { createdAt, updatedAt, ...config } = h;
  return {
    ...config,
    created_at: createdAt === null ? null : new Date(createdAt).toISOString(),
    updated_at: updatedAt === null ? null : new Date(updatedAt).toISOString(),
    circuit_breaker_state: breakerView(await sys.runner.breakerState(h)),
  };
}

async function existing(sys: HookSystem, id: string): Promise<StoredHook> {
  const hook = await sys.hooks.get(id);
  if (!hook) throw await notFound(id);
  return hook;
}

/** `tenant_id` in a hook file may be a tenant name too (the CLI's convention); null stays global. */
async function resolveTenant(app: Parameters<Parameters<typeof withHookSystem>[1]>[1], body: Record<string, unknown>): Promise<Record<string, unknown>> {
  if (typeof body.tenant_id === 'string') return { ...body, tenant_id: await tenantIdOf(app, body.tenant_id) };
  return body;
}

export function register(program: Command, cli: CliContext): void {
  const hook = program.command('hook').description('manage hooks (SPEC §6)');
  const json = () => cli.globals().json === true;

  hook
    .command('list')
    .description('list hooks (API and config file), ordered by priority')
    .option('--tenant <tenant>', "only this tenant's hooks (id or name)")
    .option('--global', 'only global hooks')
    .option('--type <type>', HOOK_TYPES.join(' | '))
    .option('--plugin <id>', "only this plugin's hooks")
    .action((opts: { tenant?: string; global?: boolean; type?: string; plugin?: string }) =>
      withHookSystem(cli, async (sys, app) => {
        if (opts.type !== undefined && !(HOOK_TYPES as readonly string[]).includes(opts.type)) throw new CliUsageError(`--type must be one of ${HOOK_TYPES.join(', ')}`);
        if (opts.tenant && opts.global) throw new CliUsageError('give either --tenant or --global, not both');
        const tenantId = opts.global ? null : opts.tenant ? await tenantIdOf(app, opts.tenant) : undefined;
        const hooks = await sys.hooks.list({ tenantId, type: opts.type as HookType | undefined, pluginId: opts.plugin });
        if (json()) cli.print(await Promise.all(hooks.map((h) => full(sys, h))));
        else {
          const rows = [];
          for (const h of hooks) {
            rows.push({ id: h.id, type: h.type, plugin: h.plugin_id, tenant: h.tenant_id ?? '(global)', enabled: h.enabled, priority: h.priority, source: h.source, breaker: (await sys.runner.breakerState(h)).state });
          }
          cli.print(rows);
        }
      }),
    );

  hook
    .command('show <id>')
    .description('one hook with its circuit breaker state')
    .action((id: string) => withHookSystem(cli, async (sys) => cli.print(await full(sys, await existing(sys, id)))));

  hook
    .command('create')
    .description('create a hook from a JSON file (the body of POST /api/v1/admin/hooks; "-" reads stdin)')
    .requiredOption('--file <file>', 'hook config (JSON)')
    .action((opts: { file: string }) =>
      withHookSystem(cli, async (sys, app) => {
        const body = await resolveTenant(app, await readJsonFile(opts.file));
        cli.print(await full(sys, await sys.hooks.create(body, cliActor)));
      }),
    );

  hook
    .command('update <id>')
    .description('replace a hook\'s config from a JSON file (fields left out take their defaults; tenant_id left out keeps the tenant)')
    .requiredOption('--file <file>', 'hook config (JSON)')
    .action((id: string, opts: { file: string }) =>
      withHookSystem(cli, async (sys, app) => {
        const current = await existing(sys, id);
        const body = await resolveTenant(app, await readJsonFile(opts.file));
        if (!('tenant_id' in body)) body.tenant_id = current.tenant_id;
        cli.print(await full(sys, await sys.hooks.update(id, { ...body, id }, cliActor)));
      }),
    );

  hook
    .command('delete <id>')
    .description('delete a hook (and its breaker state)')
    .action((id: string) =>
      withHookSystem(cli, async (sys) => {
        if (!(await sys.hooks.delete(id, cliActor))) throw await notFound(id);
        cli.print({ id, deleted: true });
      }),
    );

  hook
    .command('reset-breaker <id>')
    .description("close the hook's circuit breaker with empty counters")
    .action((id: string) =>
      withHookSystem(cli, async (sys, app) => {
        const h = await existing(sys, id);
        const before = await sys.runner.breakerState(h);
        await sys.runner.resetBreaker(h);
        await writeAudit(app.db, {
          tenantId: h.tenant_id,
          eventType: 'hook.breaker_reset',
          actor: cliActor,
          target: { type: 'hook', id: h.id },
          metadata: { plugin_id: h.plugin_id, previous_state: before.state, consecutive_failures: before.consecutiveFailures },
        });
        cli.print({ id: h.id, previous_state: before.state, state: (await sys.runner.breakerState(h)).state });
      }),
    );

  hook
    .command('test <id>')
    .description('call the hook once on a sample message (breaker and filter bypassed, nothing applied) and print the exchange')
    .action((id: string) =>
      withHookSystem(cli, async (sys) => {
        const r = await (await routes()).testHook(sys, await existing(sys, id));
        cli.print(json() ? r : { outcome: r.outcome, action: r.action, duration_ms: r.duration_ms, error: r.error, response: r.response, validation_errors: r.validation_errors });
        if (r.outcome !== 'ok') process.exitCode = 1;
      }),
    );
}
