/** `mairust alias add|list|show|remove` (SPEC §1, §12). */
import type { Command } from 'commander';
import type { Alias } from '../core/tenancy/types.js';
import type { CliContext } from './cli-context.js';
import { allPages, listFilter, cliActor, rows, scope, withApp } from './tenant.js';

function aliasRow(a: Alias) {
  return { id: a.id, address: a.address, tenant_id: a.tenantId, targets: a.targets.map((t) => t.address).join(',') };
}

export function register(program: Command, cli: CliContext): void {
  const alias = program.command('alias').description('manage aliases (extra addresses delivering into mailboxes)');

  alias
    .command('add <address>')
    .description('create an alias delivering into one or more mailboxes of the same tenant')
    .requiredOption('--to <addresses>', 'comma-separated target mailboxes (1–100)')
    .action((address: string, opts: { to: string }) =>
      withApp(cli, async (app) => {
        const targets = opts.to.split(',').map((s) => s.trim()).filter(Boolean);
        cli.print(await app.tenancy.aliases.add(scope, { address, targets }, cliActor));
      }),
    );

  alias
    .command('list')
    .description('list aliases')
    .option('--tenant <idOrName>', 'only this tenant')
    .option('--domain <idOrName>', 'only this domain')
    .action((opts: { tenant?: string; domain?: string }) =>
      withApp(cli, async (app) => {
        const { tenantId, domainId } = await listFilter(app, opts);
        const list = await allPages((o) => app.tenancy.aliases.list(scope, { ...o, tenantId, domainId }), (a) => a.address);
        cli.print(rows(cli, list, aliasRow));
      }),
    );

  alias
    .command('show <idOrAddress>')
    .description('show an alias and its targets')
    .action((ref: string) =>
      withApp(cli, async (app) => {
        cli.print(await app.tenancy.aliases.get(scope, ref));
      }),
    );

  alias
    .command('remove <idOrAddress>')
    .description('remove an alias')
    .action((ref: string) =>
      withApp(cli, async (app) => {
        const a = await app.tenancy.aliases.get(scope, ref);
        await app.tenancy.aliases.remove(scope, a.id, cliActor);
        cli.print({ removed: a.address, id: a.id });
      }),
    );
}
