/**
 * What every CLI command group gets: a way to open the application (config → database → …)
 * through the composition root, and one way to print results (JSON with --json, else readable text).
 */
import type { AppContext, OpenNeeds } from '../app/context.js';

export interface GlobalOptions {
  config?: string;
  json?: boolean;
  logFormat?: 'json' | 'text';
}

export interface CliContext {
  /** Global options parsed by commander (`--config`, `--json`, `--log-format`). */
  globals(): GlobalOptions;
  /** Loads and validates config and opens what `needs` asks for; closed by `close()` of the result. */
  open(needs?: OpenNeeds): Promise<AppContext>;
  /** Prints a result: JSON with --json, otherwise a readable table/key-value form. */
  print(value: unknown): void;
  /** Prints an error message to stderr and sets the exit code (default 1). */
  fail(message: string, exitCode?: number): void;
}
