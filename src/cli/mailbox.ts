/** `mairust mailbox add|list|show|quota|remove` (SPEC §1, §4 quotas, §12). */
import type { Command } from 'commander';
import type { Mailbox } from '../core/tenancy/types.js';
import type { CliContext } from './cli-context.js';
import { allPages, listFilter, cliActor, parseBytes, rows, scope, withApp } from './tenant.js';

function mailboxRow(m: Mailbox) {
  return { id: m.id, address: m.address, tenant_id: m.tenantId, user_id: m.userId, quota_bytes: m.quotaBytes, used_bytes: m.usedBytes, status: m.status };
}

export function register(program: Command, cli: CliContext): void {
  const mailbox = program.command('mailbox').description('manage mailboxes (deliverable addresses)');

  mailbox
    .command('add <address>')
    .description('create a mailbox with its special folders; the domain decides the tenant')
    .option('--user <idOrEmail>', 'owning user (same tenant)')
    .option('--quota <bytes>', 'quota in bytes, or with K/M/G/T (0 = unlimited; default: the plan\'s mailbox_storage_bytes)')
    .action((address: string, opts: { user?: string; quota?: string }) =>
      withApp(cli, async (app) => {
        const quotaBytes = opts.quota !== undefined ? parseBytes(opts.quota) : undefined;
        cli.print(await app.tenancy.mailboxes.add(scope, { address, user: opts.user, quotaBytes }, cliActor));
      }),
    );

  mailbox
    .command('list')
    .description('list mailboxes')
    .option('--tenant <idOrName>', 'only this tenant')
    .option('--domain <idOrName>', 'only this domain')
    .action((opts: { tenant?: string; domain?: string }) =>
      withApp(cli, async (app) => {
        const { tenantId, domainId } = await listFilter(app, opts);
        const list = await allPages((o) => app.tenancy.mailboxes.list(scope, { ...o, tenantId, domainId }), (m) => m.address);
        cli.print(rows(cli, list, mailboxRow));
      }),
    );

  mailbox
    .command('show <idOrAddress>')
    .description('show a mailbox')
    .action((ref: string) =>
      withApp(cli, async (app) => {
        cli.print(await app.tenancy.mailboxes.get(scope, ref));
      }),
    );

  mailbox
    .command('quota <idOrAddress> <bytes>')
    .description('set the quota (bytes, or with K/M/G/T; 0 = unlimited)')
    .action((ref: string, bytes: string) =>
      withApp(cli, async (app) => {
        cli.print(await app.tenancy.mailboxes.setQuota(scope, ref, parseBytes(bytes), cliActor));
      }),
    );

  mailbox
    .command('remove <idOrAddress>')
    .description('remove a mailbox and its folders (refused while it holds messages, unless --force)')
    .option('--force', 'also remove the messages it holds')
    .action((ref: string, opts: { force?: boolean }) =>
      withApp(cli, async (app) => {
        const m = await app.tenancy.mailboxes.get(scope, ref);
        await app.tenancy.mailboxes.remove(scope, m.id, { force: !!opts.force }, cliActor);
        cli.print({ removed: m.address, id: m.id });
      }),
    );
}
