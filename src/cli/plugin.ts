/**
 * `mairust plugin …` (SPEC §7 "Lifecycle", "Plugin tokens", "Per-tenant enablement"): the same
 * operations as `/api/v1/admin/plugins` for an operator on the server, audited with actor
 * `{ type: 'cli' }`. Output uses the API's JSON shapes (`--json`); the readable form lists the
 * columns an operator scans for.
 *
 * A signing secret or token is printed once, by the command that creates it (install of a new
 * plugin, secret-rotate, token-rotate); no other command can show it again.
 *
 * `plugin init|package` (authoring tools that need no database) come from plugin-dev.ts.
 */
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import type { AppContext } from '../app/context.js';
import type { HookSystem } from '../app/hooks.js';
import type { InstalledPlugin } from '../plugins/types.js';
import { TenancyError } from '../core/tenancy/errors.js';
import { cliActor } from '../security/audit.js';
import { HookConflictError, HookReadOnlyError, HookValidationError } from '../hooks/runtime-types.js';
import { PLUGIN_TOKEN_SCOPES, PluginInstallError, PluginNotFoundError, PluginStateError, type PluginTokenScope } from '../plugins/types.js';
import type { CliContext } from './cli-context.js';
import { tenantIdOf } from './tenant.js';
import { registerPluginDev } from './plugin-dev.js';

// The hook system (registry, manager, executors) and the API's views are loaded when a command
// runs, not when the CLI starts: every `mairust` command would otherwise pay for them.

/** The API's JSON shape of a plugin (`GET /api/v1/admin/plugins/:id`), so `--json` prints the same. */
async function pluginView(p: InstalledPlugin) {
  return (await import('../http/api/routes/plugins.js')).pluginView(p);
}

/** A mistake on the command line (bad option value): reported like a service error, exit 2. */
export class CliUsageError extends Error {}

/** Errors that are an expected outcome of an admin command: one line (plus details) on stderr, no stack. */
function expectedError(err: unknown): { message: string; code: number } | null {
  if (err instanceof CliUsageError) return { message: err.message, code: 2 };
  if (err instanceof PluginInstallError) {
    const errors = Array.isArray(err.details.errors) ? (err.details.errors as { path?: string; message?: string }[]) : [];
    return { message: [err.message, ...errors.map((e) => `  ${e.path ?? ''}: ${e.message ?? ''}`)].join('\n'), code: 1 };
  }
  if (err instanceof HookValidationError) return { message: ['invalid hook:', ...err.issues.map((i) => `  ${i.path || '(root)'}: ${i.message}`)].join('\n'), code: 1 };
  if (
    err instanceof PluginNotFoundError ||
    err instanceof PluginStateError ||
    err instanceof HookConflictError ||
    err instanceof HookReadOnlyError ||
    (err instanceof Error && err.name === 'HookNotFoundError') ||
    err instanceof TenancyError
  ) {
    return { message: err.message, code: 1 };
  }
  return null;
}

/**
 * Opens the app and its hook system, runs `fn`, closes the app. Expected failures are printed via
 * `cli.fail`; anything else propagates (main.ts prints it).
 */
export async function withHookSystem(cli: CliContext, fn: (sys: HookSystem, app: AppContext) => Promise<void>): Promise<void> {
  const app = await cli.open();
  try {
    const [{ buildHookSystem }, { openSecretStore }] = await Promise.all([import('../app/hooks.js'), import('../security/secrets/index.js')]);
    const secrets = await openSecretStore({ config: app.config, db: app.db, logger: app.logger });
    await fn(buildHookSystem(app, { secrets }), app);
  } catch (err) {
    const e = expectedError(err);
    if (e) cli.fail(e.message, e.code);
    else throw err;
  } finally {
    await app.close();
  }
}

function parseScopes(text: string): PluginTokenScope[] {
  const scopes = [...new Set(text.split(',').map((s) => s.trim()).filter(Boolean))];
  const bad = scopes.filter((s) => !(PLUGIN_TOKEN_SCOPES as readonly string[]).includes(s));
  if (scopes.length === 0 || bad.length) throw new CliUsageError(`--scope must be a comma-separated list of ${PLUGIN_TOKEN_SCOPES.join(', ')}`);
  return scopes as PluginTokenScope[];
}

function parseJsonObject(text: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new CliUsageError(`${what} is not valid JSON`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new CliUsageError(`${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export function register(program: Command, cli: CliContext): void {
  const plugin = program.command('plugin').description('install and manage plugins (SPEC §7)');
  const json = () => cli.globals().json === true;

  plugin
    .command('install <path>')
    .description('install or upgrade a plugin from a directory or a .mairust-plugin package (prints a new plugin\'s signing secret once)')
    .action((path: string) =>
      withHookSystem(cli, async (sys) => {
        const isDir = await stat(path).then((s) => s.isDirectory(), () => false);
        const r = isDir ? await sys.plugins.installFromDirectory(path, cliActor) : await sys.plugins.installFromPackage(path, cliActor);
        const v = await pluginView(r.plugin);
        const out: Record<string, unknown> = json()
          ? { ...v, upgraded: r.upgraded }
          : { id: v.id, version: v.version, status: v.status, upgraded: r.upgraded, pending_permissions: v.pending_permissions.map((c) => c.permission).join(', ') || null, high_risk: v.high_risk_reasons.join(', ') || null };
        if (r.secret !== undefined) out.secret = r.secret;
        cli.print(out);
        if (!json() && r.secret !== undefined) process.stderr.write('The signing secret is shown only now: give it to the plugin.\n');
        if (!json() && v.status === 'installed') process.stderr.write(`Next: review the permissions, then "mairust plugin approve ${v.id}" and "mairust plugin enable ${v.id}".\n`);
      }),
    );

  plugin
    .command('list')
    .description('list installed plugins')
    .action(() =>
      withHookSystem(cli, async (sys) => {
        const list = await Promise.all((await sys.plugins.list()).sort((a, b) => (a.id < b.id ? -1 : 1)).map(pluginView));
        cli.print(
          json()
            ? list
            : list.map((p) => ({ id: p.id, version: p.version, status: p.status, runnable: p.runnable, protocol: p.entry.protocol, pending: p.pending_permissions.length, high_risk: p.high_risk, health: p.health.ok })),
        );
      }),
    );

  plugin
    .command('show <id>')
    .description('show one plugin: manifest, permissions (approved and pending), risk flags, health')
    .action((id: string) =>
      withHookSystem(cli, async (sys) => {
        const p = await sys.plugins.get(id);
        if (!p) throw new PluginNotFoundError(id);
        cli.print(await pluginView(p));
      }),
    );

  plugin
    .command('approve <id>')
    .description("approve the plugin's current permissions")
    .option('--allow-private', 'also let it call loopback/private addresses')
    .action((id: string, opts: { allowPrivate?: boolean }) =>
      withHookSystem(cli, async (sys) => {
        const p = await pluginView(await sys.plugins.approve(id, cliActor, { allowPrivate: opts.allowPrivate === true }));
        cli.print(json() ? p : { id: p.id, status: p.status, approved_permissions: p.approved_permissions, allow_private: p.allow_private, high_risk: p.high_risk_reasons.join(', ') || null });
      }),
    );

  for (const verb of ['enable', 'disable'] as const) {
    plugin
      .command(`${verb} <id>`)
      .description(verb === 'enable' ? 'let hooks call the plugin (needs approval first)' : 'stop hooks calling the plugin')
      .action((id: string) =>
        withHookSystem(cli, async (sys) => {
          const p = await pluginView(verb === 'enable' ? await sys.plugins.enable(id, cliActor) : await sys.plugins.disable(id, cliActor));
          cli.print(json() ? p : { id: p.id, status: p.status, runnable: p.runnable });
        }),
      );
  }

  plugin
    .command('uninstall <id>')
    .description('remove the plugin with its files, secrets, tokens, tenant settings and hooks')
    .action((id: string) =>
      withHookSystem(cli, async (sys) => {
        await sys.plugins.uninstall(id, cliActor);
        sys.hooks.invalidate();
        cli.print({ id, uninstalled: true });
      }),
    );

  plugin
    .command('logs <id>')
    .description("the plugin's log, newest first")
    .option('--limit <n>', 'lines, 1–500', '50')
    .option('--before <ms>', 'only lines older than this time (ms since the epoch)')
    .option('--tenant <tenant>', "only this tenant's lines (id or name)")
    .action((id: string, opts: { limit: string; before?: string; tenant?: string }) =>
      withHookSystem(cli, async (sys, app) => {
        const limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new CliUsageError('--limit must be an integer from 1 to 500');
        const before = opts.before === undefined ? undefined : Number(opts.before);
        if (before !== undefined && !Number.isSafeInteger(before)) throw new CliUsageError('--before must be a time in ms since the epoch');
        if (!(await sys.plugins.get(id))) throw new PluginNotFoundError(id);
        const tenantId = opts.tenant ? await tenantIdOf(app, opts.tenant) : undefined;
        const rows = await sys.plugins.logs(id, { limit, before, tenantId });
        cli.print(
          rows.map((l) =>
            json()
              ? { id: l.id, at: iso(l.at), level: l.level, tenant_id: l.tenantId, hook_id: l.hookId, message_id: l.messageId, message: l.message }
              : { at: iso(l.at), level: l.level, hook: l.hookId, message: l.message },
          ),
        );
      }),
    );

  plugin
    .command('secret-rotate <id>')
    .description('issue a new signing secret (printed once); the previous one stays valid for plugins.secret_overlap_hours')
    .action((id: string) =>
      withHookSystem(cli, async (sys) => {
        const secret = await sys.plugins.rotateSecret(id, cliActor);
        cli.print({ plugin_id: id, secret });
      }),
    );

  plugin
    .command('token-rotate <id>')
    .description('revoke the tokens sharing a scope and issue a new plt_ token (printed once)')
    .option('--scope <scopes>', `comma-separated: ${PLUGIN_TOKEN_SCOPES.join(', ')}`, PLUGIN_TOKEN_SCOPES.join(','))
    .action((id: string, opts: { scope: string }) =>
      withHookSystem(cli, async (sys) => {
        const scopes = parseScopes(opts.scope);
        const { token, info } = await sys.plugins.rotateToken(id, scopes, cliActor);
        cli.print({ plugin_id: id, token_id: info.id, scopes: info.scopes, expires_at: iso(info.expiresAt), token });
      }),
    );

  plugin
    .command('tokens <id>')
    .description("list the plugin's tokens (never the tokens themselves)")
    .action((id: string) =>
      withHookSystem(cli, async (sys) => {
        const tokens = await sys.plugins.listTokens(id);
        cli.print(tokens.map((t) => ({ id: t.id, scopes: t.scopes, created_at: iso(t.createdAt), expires_at: iso(t.expiresAt), revoked_at: iso(t.revokedAt), last_used_at: iso(t.lastUsedAt) })));
      }),
    );

  for (const verb of ['tenant-enable', 'tenant-disable'] as const) {
    plugin
      .command(`${verb} <id>`)
      .description(verb === 'tenant-enable' ? "let a tenant's own hooks use the plugin, optionally with a config" : "stop a tenant's own hooks using the plugin")
      .requiredOption('--tenant <tenant>', 'tenant id or name')
      // Not `--config`: that is the global option naming the config file.
      .option('--tenant-config <json>', 'the tenant\'s config for the plugin (a JSON object, sent as metadata.config)')
      .action((id: string, opts: { tenant: string; tenantConfig?: string }) =>
        withHookSystem(cli, async (sys, app) => {
          const config = opts.tenantConfig === undefined ? undefined : parseJsonObject(opts.tenantConfig, '--tenant-config');
          if (!(await sys.plugins.get(id))) throw new PluginNotFoundError(id);
          const tenantId = await tenantIdOf(app, opts.tenant);
          const row = await sys.plugins.setTenantPlugin(tenantId, id, { enabled: verb === 'tenant-enable', config }, cliActor);
          cli.print({ tenant_id: row.tenantId, plugin_id: row.pluginId, enabled: row.enabled, config: row.config });
        }),
      );
  }

  registerPluginDev(plugin, cli);
}
