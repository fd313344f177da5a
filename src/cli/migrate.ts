/** `mairust migrate [status|rollback]` — versioned schema migrations (docs/adr/0002-additive-migrations.md). */
import type { Command } from 'commander';
import { migrateDown, migrationStatus } from '../store/db/migrator.js';
import type { CliContext } from './cli-context.js';

export function register(program: Command, cli: CliContext): void {
  const migrate = program
    .command('migrate')
    .description('apply pending database migrations')
    .action(async () => {
      const app = await cli.open({ forceMigrate: true });
      try {
        cli.print(await migrationStatus(app.db));
      } finally {
        await app.close();
      }
    });
  migrate
    .command('status')
    .description('list migrations and whether each is applied')
    .action(async () => {
      const app = await cli.open({ noMigrate: true });
      try {
        cli.print(await migrationStatus(app.db));
      } finally {
        await app.close();
      }
    });
  migrate
    .command('rollback')
    .description('roll back the newest applied migration (only where it has a down step)')
    .action(async () => {
      const app = await cli.open({ noMigrate: true });
      try {
        const m = await migrateDown(app.db);
        cli.print(m ? { rolled_back: `${m.version}_${m.name}` } : { rolled_back: null });
      } finally {
        await app.close();
      }
    });
}
