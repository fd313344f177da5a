/**
 * `mairust user add|list|show|remove` (SPEC §9, §12). A password comes from stdin
 * (`--password-stdin`), the command line (`--password`, visible to other local users in `ps`), or
 * is generated and printed once.
 */
import type { Command } from 'commander';
import { generatePassword } from '../security/passwords.js';
import { ROLES } from '../core/tenancy/roles.js';
import type { User, UserRole } from '../core/tenancy/types.js';
import type { CliContext } from './cli-context.js';
import { TenancyUsageError, allPages, cliActor, rows, scope, tenantIdOf, withApp } from './tenant.js';

/** Reads a password from stdin: everything up to EOF, minus one trailing newline. */
export async function readPasswordFromStdin(stdin: NodeJS.ReadableStream = process.stdin, maxBytes = 8192): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    size += b.length;
    if (size > maxBytes) throw new TenancyUsageError(`the password on stdin is longer than ${maxBytes} bytes`);
    chunks.push(b);
  }
  const text = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (text === '') throw new TenancyUsageError('no password on stdin');
  return text;
}

function userRow(u: User) {
  return { id: u.id, email: u.email, role: u.role, status: u.status, tenant_id: u.tenantId, name: u.displayName };
}

export function register(program: Command, cli: CliContext): void {
  const user = program.command('user').description('manage users (logins)');

  user
    .command('add <email>')
    .description('create a user; without a password option a random one is generated and printed once')
    .requiredOption('--tenant <idOrName>', 'tenant of the user')
    .option('--role <role>', `one of ${ROLES.join(', ')}`, 'user')
    .option('--password-stdin', 'read the password from stdin')
    .option('--password <password>', 'the password (visible in the process list; prefer --password-stdin)')
    .option('--name <displayName>', 'display name')
    .option('--domains <list>', 'domain_admin only: comma-separated domains it manages')
    .action((email: string, opts: { tenant: string; role: string; passwordStdin?: boolean; password?: string; name?: string; domains?: string }) =>
      withApp(cli, async (app) => {
        if (opts.passwordStdin && opts.password !== undefined) throw new TenancyUsageError('give either --password-stdin or --password, not both');
        if (opts.password !== undefined) process.stderr.write('warning: --password is visible to other users in the process list; prefer --password-stdin\n');
        const generated = !opts.passwordStdin && opts.password === undefined;
        const password = opts.passwordStdin ? await readPasswordFromStdin() : (opts.password ?? generatePassword());
        const created = await app.tenancy.users.add(
          scope,
          {
            tenantId: await tenantIdOf(app, opts.tenant),
            email,
            role: opts.role as UserRole,
            password,
            displayName: opts.name,
            domainScope: opts.domains ? opts.domains.split(',').map((d) => d.trim()).filter(Boolean) : undefined,
          },
          cliActor,
        );
        if (generated) {
          process.stderr.write('note: the generated password is shown only this once; store it now\n');
          cli.print({ ...created, password });
        } else {
          cli.print(created);
        }
      }),
    );

  user
    .command('list')
    .description('list users')
    .option('--tenant <idOrName>', 'only this tenant')
    .action((opts: { tenant?: string }) =>
      withApp(cli, async (app) => {
        const tenantId = opts.tenant ? await tenantIdOf(app, opts.tenant) : undefined;
        const list = await allPages((o) => app.tenancy.users.list(scope, { ...o, tenantId }), (u) => u.email);
        cli.print(rows(cli, list, userRow));
      }),
    );

  user
    .command('show <idOrEmail>')
    .description('show a user')
    .action((ref: string) =>
      withApp(cli, async (app) => {
        cli.print(await app.tenancy.users.get(scope, ref));
      }),
    );

  user
    .command('remove <idOrEmail>')
    .description('remove a user (its mailboxes stay, without an owner)')
    .action((ref: string) =>
      withApp(cli, async (app) => {
        const u = await app.tenancy.users.get(scope, ref);
        await app.tenancy.users.remove(scope, u.id, cliActor);
        cli.print({ removed: u.email, id: u.id });
      }),
    );
}
