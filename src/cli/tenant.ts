/**
 * `mairust tenant add|list|show|update|suspend|activate|remove` (SPEC §9, §12), plus the small
 * helpers the other tenancy command groups share (domain, user, mailbox, alias, admin).
 *
 * Every change is made in the system scope and audited with actor `{ type: 'cli' }`.
 */
import type { Command } from 'commander';
import type { AppContext } from '../app/context.js';
import { systemScope } from '../core/scope.js';
import { TenancyError } from '../core/tenancy/errors.js';
import { PLAN_KEYS } from '../core/tenancy/limits.js';
import type { ListOptions, Tenant } from '../core/tenancy/types.js';
import { cliActor } from '../security/audit.js';
import type { CliContext } from './cli-context.js';

export { cliActor };
export const scope = systemScope;

/**
 * Opens the app, runs `fn`, closes the app. A tenancy error (not found, conflict, invalid input,
 * limit) is an expected outcome of an admin command: printed as one line via `cli.fail`, no stack.
 */
export async function withApp(cli: CliContext, fn: (app: AppContext) => Promise<void>): Promise<void> {
  const app = await cli.open();
  try {
    await fn(app);
  } catch (err) {
    if (err instanceof TenancyError) cli.fail(err.message, 1);
    else throw err;
  } finally {
    await app.close();
  }
}

/** Resolves `--tenant` (id or name) to a tenant id. */
export async function tenantIdOf(app: AppContext, ref: string): Promise<string> {
  return (await app.tenancy.tenants.get(scope, ref)).id;
}

/** Reads every page of a keyset-paged list (the CLI shows everything; the API pages). */
/** The `--tenant` / `--domain` list filter shared by `mailbox list` and `alias list`: one or neither. */
export async function listFilter(app: AppContext, opts: { tenant?: string; domain?: string }): Promise<{ tenantId?: string; domainId?: string }> {
  if (opts.tenant && opts.domain) throw new TenancyUsageError('give either --tenant or --domain, not both');
  const tenantId = opts.tenant ? await tenantIdOf(app, opts.tenant) : undefined;
  const domainId = opts.domain ? (await app.tenancy.domains.get(scope, opts.domain)).id : undefined;
  return { tenantId, domainId };
}

export async function allPages<T>(fetch: (opts: ListOptions) => Promise<T[]>, keyOf: (row: T) => string): Promise<T[]> {
  const out: T[] = [];
  const limit = 1000;
  let after: string | undefined;
  for (;;) {
    const page = await fetch({ limit, after });
    out.push(...page);
    if (page.length < limit) return out;
    after = keyOf(page[page.length - 1]);
  }
}

/** `--json` prints whole objects; the readable form prints the columns an admin scans for. */
export function rows<T extends object>(cli: CliContext, items: T[], columns: (item: T) => Record<string, unknown>): unknown[] {
  return cli.globals().json ? items : items.map(columns);
}

/** Non-negative integer, optionally with a binary suffix: 500, 10K, 512M, 5G, 1T. */
export function parseBytes(text: string): number {
  const m = /^(\d+)\s*([KMGT]?)(i?B)?$/i.exec(text.trim());
  if (!m) throw new TenancyUsageError(`"${text}" is not a size (use bytes, or a number with K, M, G or T)`);
  const exp = ' KMGT'.indexOf(m[2].toUpperCase() || ' ');
  const n = Number(m[1]) * 1024 ** exp;
  if (!Number.isSafeInteger(n)) throw new TenancyUsageError(`"${text}" is too large`);
  return n;
}

/** A usage mistake on the command line; reported like a tenancy error. */
export class TenancyUsageError extends TenancyError {
  readonly code = 'VALIDATION_ERROR' as const;
  readonly httpStatus = 422;
}

function parseLimits(pairs: string[] | undefined): Record<string, number | null> | undefined {
  if (!pairs || pairs.length === 0) return undefined;
  const out: Record<string, number | null> = {};
  for (const pair of pairs) {
    const m = /^([a-z_]+)=(.*)$/.exec(pair);
    if (!m) throw new TenancyUsageError(`--limit expects KEY=VALUE (keys: ${PLAN_KEYS.join(', ')}), got "${pair}"`);
    out[m[1]] = m[2] === '' || m[2] === 'default' ? null : /bytes/.test(m[1]) ? parseBytes(m[2]) : Number(m[2]);
  }
  return out;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function tenantRow(t: Tenant) {
  return { id: t.id, name: t.name, status: t.status, plan: t.plan };
}

export function register(program: Command, cli: CliContext): void {
  const tenant = program.command('tenant').description('manage tenants (organisations)');

  tenant
    .command('add <name>')
    .description('create a tenant')
    .option('--plan <plan>', 'plan name from config `plans` (default: `default_plan`)')
    .option('--limit <key=value>', `override a plan limit (${PLAN_KEYS.join(', ')}); repeatable`, collect)
    .action((name: string, opts: { plan?: string; limit?: string[] }) =>
      withApp(cli, async (app) => {
        cli.print(await app.tenancy.tenants.create(scope, { name, plan: opts.plan, limits: parseLimits(opts.limit) }, cliActor));
      }),
    );

  tenant
    .command('list')
    .description('list tenants')
    .option('--all', 'include deleted tenants (in their grace period)')
    .action((opts: { all?: boolean }) =>
      withApp(cli, async (app) => {
        const list = await allPages((o) => app.tenancy.tenants.list(scope, { ...o, includeDeleted: !!opts.all }), (t) => t.name);
        cli.print(rows(cli, list, tenantRow));
      }),
    );

  tenant
    .command('show <idOrName>')
    .description('show a tenant with its effective limits and usage')
    .action((ref: string) =>
      withApp(cli, async (app) => {
        const t = await app.tenancy.tenants.get(scope, ref);
        const usage = await app.tenancy.tenants.usage(scope, t.id);
        const { limits: effectiveLimits, ...counts } = usage;
        cli.print({ ...t, effectiveLimits, usage: counts });
      }),
    );

  tenant
    .command('update <idOrName>')
    .description("change a tenant's name, plan or limit overrides")
    .option('--name <name>', 'new name')
    .option('--plan <plan>', 'new plan')
    .option('--limit <key=value>', 'override a plan limit; `key=` or `key=default` removes the override; repeatable', collect)
    .action((ref: string, opts: { name?: string; plan?: string; limit?: string[] }) =>
      withApp(cli, async (app) => {
        cli.print(await app.tenancy.tenants.update(scope, ref, { name: opts.name, plan: opts.plan, limits: parseLimits(opts.limit) }, cliActor));
      }),
    );

  for (const [verb, status, description] of [
    ['suspend', 'suspended', 'suspend a tenant: its users cannot log in or send; mail is still accepted'],
    ['activate', 'active', 'activate a suspended tenant, or restore a deleted one within its grace period'],
    ['remove', 'deleted', 'delete a tenant (soft: purged after the 30-day grace period; `activate` restores it)'],
  ] as const) {
    tenant
      .command(`${verb} <idOrName>`)
      .description(description)
      .action((ref: string) =>
        withApp(cli, async (app) => {
          const t = await app.tenancy.tenants.setStatus(scope, ref, status, cliActor);
          cli.print({ id: t.id, name: t.name, status: t.status, deleted_at: t.deletedAt });
        }),
      );
  }
}
