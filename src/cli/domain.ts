/** `mairust domain add|list|show|remove|catch-all` (SPEC §9, §12). */
import type { Command } from 'commander';
import type { Domain } from '../core/tenancy/types.js';
import type { CliContext } from './cli-context.js';
import { TenancyUsageError, allPages, cliActor, rows, scope, tenantIdOf, withApp } from './tenant.js';

function domainRow(d: Domain) {
  return { id: d.id, name: d.name, tenant_id: d.tenantId, status: d.status, catch_all: d.catchAllMailboxId };
}

export function register(program: Command, cli: CliContext): void {
  const domain = program.command('domain').description('manage mail domains');

  domain
    .command('add <name>')
    .description('add a mail domain to a tenant (IDNs are stored as A-labels)')
    .requiredOption('--tenant <idOrName>', 'owning tenant')
    .action((name: string, opts: { tenant: string }) =>
      withApp(cli, async (app) => {
        cli.print(await app.tenancy.domains.add(scope, { tenantId: await tenantIdOf(app, opts.tenant), name }, cliActor));
      }),
    );

  domain
    .command('list')
    .description('list domains')
    .option('--tenant <idOrName>', 'only this tenant')
    .action((opts: { tenant?: string }) =>
      withApp(cli, async (app) => {
        const tenantId = opts.tenant ? await tenantIdOf(app, opts.tenant) : undefined;
        const list = await allPages((o) => app.tenancy.domains.list(scope, { ...o, tenantId }), (d) => d.name);
        cli.print(rows(cli, list, domainRow));
      }),
    );

  domain
    .command('show <idOrName>')
    .description('show a domain')
    .action((ref: string) =>
      withApp(cli, async (app) => {
        cli.print(await app.tenancy.domains.get(scope, ref));
      }),
    );

  domain
    .command('remove <idOrName>')
    .description('remove a domain (refused while it has mailboxes or aliases)')
    .action((ref: string) =>
      withApp(cli, async (app) => {
        const d = await app.tenancy.domains.get(scope, ref);
        await app.tenancy.domains.remove(scope, d.id, cliActor);
        cli.print({ removed: d.name, id: d.id });
      }),
    );

  domain
    .command('catch-all <idOrName> [mailbox]')
    .description('deliver mail for unknown addresses of the domain to a mailbox of its tenant')
    .option('--clear', 'remove the catch-all')
    .action((ref: string, mailbox: string | undefined, opts: { clear?: boolean }) =>
      withApp(cli, async (app) => {
        if (!mailbox && !opts.clear) throw new TenancyUsageError('name a mailbox, or pass --clear');
        if (mailbox && opts.clear) throw new TenancyUsageError('give either a mailbox or --clear, not both');
        cli.print(await app.tenancy.domains.setCatchAll(scope, ref, opts.clear ? null : mailbox!, cliActor));
      }),
    );
}
