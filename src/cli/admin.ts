/**
 * `mairust admin reset-password` — emergency access (SPEC §10): sets a generated password, prints
 * it once, and audits `admin.password_reset` with actor `{ type: 'cli' }`. Works for any user,
 * including the super-admin, to whoever can run the CLI against the database (i.e. the operator).
 */
import type { Command } from 'commander';
import type { CliContext } from './cli-context.js';
import { cliActor, scope, withApp } from './tenant.js';

export function register(program: Command, cli: CliContext): void {
  const admin = program.command('admin').description('emergency administration');

  admin
    .command('reset-password <email>')
    .description('set a new random password for a user and print it once')
    .action((email: string) =>
      withApp(cli, async (app) => {
        const { user, password } = await app.tenancy.users.resetPassword(scope, email, cliActor);
        process.stderr.write('note: the new password is shown only this once; store it now\n');
        cli.print({ email: user.email, id: user.id, password });
      }),
    );
}
