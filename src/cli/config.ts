/**
 * `mairust config validate|schema|show|docs` (SPEC §2 "Config schema", §12).
 *
 * These commands work on the config alone: they never open the database or the blob store, so
 * they are safe to run on a build machine or before the first start.
 */
import type { Command } from 'commander';
import type { CliContext } from './cli-context.js';
import { ConfigError, findConfigFile, formatIssue, loadConfig, type LoadConfigOptions } from '../config/loader.js';
import { configJsonSchema } from '../config/validate.js';
import { redactConfig } from '../config/secrets.js';
import { renderConfigReference } from '../config/docs.js';

/** Exit code for an invalid configuration (1 stays for other failures). */
export const EXIT_INVALID_CONFIG = 2;

/** Where output goes; tests pass their own to capture it and to point the loader at temp dirs. */
export interface ConfigCommandIo {
  out(text: string): void;
  err(text: string): void;
  loadOptions?: Omit<LoadConfigOptions, 'configPath'>;
}

const processIo: ConfigCommandIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

export function register(program: Command, cli: CliContext, io: ConfigCommandIo = processIo): void {
  const config = program.command('config').description('Check, print and document the configuration');

  config
    .command('validate [file]')
    .description('Validate a config file (default: the one the server would load) and list every wrong key')
    .option('--no-env', 'ignore environment overrides and leave env:/file: references unresolved')
    .action(async (file: string | undefined, opts: { env: boolean }) => {
      const configPath = file ?? cli.globals().config;
      try {
        const loaded = await loadConfig({ ...io.loadOptions, configPath, useEnvironment: opts.env });
        io.out(loaded.source ? `OK: ${loaded.source} is valid\n` : 'OK: no config file found; the built-in defaults are valid\n');
      } catch (err) {
        reportConfigError(err, cli, io);
      }
    });

  config
    .command('schema')
    .description('Print the JSON Schema of the config file')
    .action(() => {
      io.out(JSON.stringify(configJsonSchema(), null, 2) + '\n');
    });

  config
    .command('show')
    .description('Print the effective configuration (defaults + file + environment) as JSON, secrets masked')
    .action(async () => {
      try {
        const loaded = await loadConfig({ ...io.loadOptions, configPath: cli.globals().config });
        io.out(JSON.stringify(redactConfig(loaded.config), null, 2) + '\n');
      } catch (err) {
        reportConfigError(err, cli, io);
      }
    });

  config
    .command('docs')
    .description('Print the Markdown config reference (docs/config.md)')
    .action(() => {
      io.out(renderConfigReference());
    });

  config
    .command('path')
    .description('Print which config file would be loaded')
    .action(() => {
      try {
        const found = findConfigFile({ ...io.loadOptions, configPath: cli.globals().config });
        io.out(found.path ? `${found.path}\n` : `(none: ${found.reason})\n`);
      } catch (err) {
        reportConfigError(err, cli, io);
      }
    });
}

/** Every issue on its own `path: message` line, then a summary with exit code 2. */
function reportConfigError(err: unknown, cli: CliContext, io: ConfigCommandIo): void {
  if (!(err instanceof ConfigError)) throw err;
  for (const issue of err.issues) io.err(formatIssue(issue) + '\n');
  const n = err.issues.length;
  cli.fail(`${err.source ?? 'configuration'}: ${n} issue${n === 1 ? '' : 's'}`, EXIT_INVALID_CONFIG);
}
