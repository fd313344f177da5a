/**
 * `mairust outbound stats | accounts | suspend | unsuspend | whitelist list|add|remove` (SPEC §8
 * "Recovery", §12): the outbound spam policy's accounts from the command line. Users are named by
 * id or e-mail. Changes run in the system scope, audited with actor `{ type: 'cli' }`; a
 * suspension publishes `account.suspended` through the webhook queue like the API's.
 */
import type { Command } from 'commander';
import type { AppContext } from '../app/context.js';
import { OutboundAccounts, type AccountView } from '../outbound/policy/accounts.js';
import { WebhookPublisher } from '../webhooks/publisher.js';
import type { CliContext } from './cli-context.js';
import { cliActor, scope, withApp } from './tenant.js';

function accountsOf(app: AppContext): OutboundAccounts {
  const events = new WebhookPublisher({ db: app.db, queue: app.queue, config: () => app.config.webhooks, logger: app.logger });
  return new OutboundAccounts({ db: app.db, tenancy: app.tenancy, config: () => app.config.outbound, events });
}

const when = (ms: number | null) => (ms === null ? '' : new Date(ms).toISOString());

function accountRow(a: AccountView) {
  return { user: a.email ?? a.userId, level: a.level, suspended: a.suspended, suspended_at: when(a.suspendedAt), reason: a.suspendedReason ?? '', auto_reenable_at: when(a.autoReenableAt), last_score: a.lastScore ?? '' };
}

export function register(program: Command, cli: CliContext): void {
  const out = program.command('outbound').description('outbound spam policy: statistics, suspended accounts, whitelist (SPEC §8)');

  out
    .command('stats')
    .description('accounts by level, whitelisted accounts, policy events of the last 24 h')
    .action(() => withApp(cli, async (app) => cli.print(await accountsOf(app).stats(scope))));

  out
    .command('accounts')
    .description('accounts the policy engine tracks, most recently changed first')
    .option('--suspended', 'only suspended accounts')
    .action((opts: { suspended?: boolean }) =>
      withApp(cli, async (app) => {
        const list = await accountsOf(app).list(scope, { status: opts.suspended ? 'suspended' : 'all', limit: 1000 });
        cli.print(cli.globals().json ? list : list.map(accountRow));
      }),
    );

  out
    .command('suspend <user>')
    .description('refuse sending from the account (550 5.7.1); receiving continues')
    .option('--reason <text>', 'why (recorded and audited)', '')
    .action((user: string, opts: { reason: string }) =>
      withApp(cli, async (app) => cli.print(accountRow(await accountsOf(app).suspend(scope, user, opts.reason, cliActor)))),
    );

  out
    .command('unsuspend <user>')
    .description('allow sending again, with fresh per-user rate counts')
    .action((user: string) => withApp(cli, async (app) => cli.print(accountRow(await accountsOf(app).unsuspend(scope, user, cliActor)))));

  const wl = out.command('whitelist').description('accounts with raised sending limits (outbound.rate_limits.whitelist_profiles)');
  wl.command('list')
    .description('list whitelisted accounts')
    .action(() =>
      withApp(cli, async (app) => {
        const rows = await accountsOf(app).listWhitelist(scope);
        cli.print(rows.map((w) => ({ id: w.id, user: w.email ?? w.userId, profile: w.profile, per_hour: w.hourlyLimit, per_day: w.dailyLimit, note: w.note })));
      }),
    );
  wl.command('add <user>')
    .description('whitelist the account with a profile')
    .requiredOption('--profile <name>', 'a profile of outbound.rate_limits.whitelist_profiles, e.g. newsletter')
    .option('--note <text>', 'why', '')
    .action((user: string, opts: { profile: string; note: string }) =>
      withApp(cli, async (app) => {
        const w = await accountsOf(app).addWhitelist(scope, user, opts.profile, opts.note, cliActor);
        cli.print({ id: w.id, user: w.email ?? w.userId, profile: w.profile, per_hour: w.hourlyLimit, per_day: w.dailyLimit });
      }),
    );
  wl.command('remove <user>')
    .description('remove the whitelist entry (by user id/e-mail or entry id)')
    .action((user: string) =>
      withApp(cli, async (app) => {
        await accountsOf(app).removeWhitelist(scope, user, cliActor);
        cli.print(`removed ${user} from the outbound whitelist`);
      }),
    );
}
