/**
 * `mairust` — the command-line entry point. Each command group lives in its own file and
 * registers itself on the program; this file only wires global options and error handling.
 */
import { Command, CommanderError } from 'commander';
import { openApp } from '../app/context.js';
import { ConfigError } from '../config/loader.js';
import type { CliContext, GlobalOptions } from './cli-context.js';
import { formatHuman } from './print.js';
import { register as registerServe } from './serve.js';
import { register as registerMigrate } from './migrate.js';
import { register as registerConfig } from './config.js';
import { register as registerTenant } from './tenant.js';
import { register as registerDomain } from './domain.js';
import { register as registerUser } from './user.js';
import { register as registerMailbox } from './mailbox.js';
import { register as registerAlias } from './alias.js';
import { register as registerAdmin } from './admin.js';
import { register as registerQueue } from './queue.js';
import { register as registerDb } from './db.js';
import { register as registerSecrets } from './secrets.js';
import { register as registerPlugin } from './plugin.js';
import { register as registerHook } from './hook.js';
import { register as registerDkim } from './dkim.js';
import { register as registerOutbound } from './outbound.js';

export function buildProgram(): { program: Command; cli: CliContext } {
  const program = new Command('mairust')
    .description('MaiRust mail platform')
    .option('-c, --config <file>', 'config file (default: MAIRUST_CONFIG or the search path of SPEC §12)')
    .option('--json', 'print results as JSON')
    .option('--log-format <format>', 'json | text')
    .showHelpAfterError()
    .exitOverride();

  const cli: CliContext = {
    globals: () => program.opts<GlobalOptions>(),
    open: (needs) => {
      const g = program.opts<GlobalOptions>();
      // CLI logs go to stderr so that stdout carries only the command's result.
      return openApp({ ...needs, configPath: g.config, logFormat: g.logFormat ?? 'text', logDestination: 2 });
    },
    print: (value) => {
      process.stdout.write((program.opts<GlobalOptions>().json ? JSON.stringify(value, null, 2) : formatHuman(value)) + '\n');
    },
    fail: (message, exitCode = 1) => {
      process.stderr.write(`error: ${message}\n`);
      process.exitCode = exitCode;
    },
  };

  for (const register of [
    registerServe, registerMigrate, registerConfig, registerTenant, registerDomain, registerUser,
    registerMailbox, registerAlias, registerAdmin, registerQueue, registerDb, registerSecrets, registerPlugin, registerHook,
    registerDkim, registerOutbound,
  ]) register(program, cli);
  return { program, cli };
}

export async function main(argv: string[]): Promise<void> {
  const { program } = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`error: invalid configuration${err.source ? ` in ${err.source}` : ''}:\n`);
      for (const issue of err.issues) process.stderr.write(`  ${issue.path || '(root)'}: ${issue.message}\n`);
      process.exitCode = 2;
      return;
    }
    const e = err as Error & { code?: string };
    process.stderr.write(`error: ${e.message}\n`);
    if (process.env.MAIRUST_DEBUG) process.stderr.write(`${e.stack}\n`);
    process.exitCode = 1;
  }
}
