/**
 * `mairust secrets rotate-master-key --new-key <env:NAME|file:PATH>` (SPEC §10 "master-key rotation
 * re-wraps data keys"; procedure in docs/adr/0008).
 *
 * The current key is the configured one (security.master_key / MAIRUST_MASTER_KEY, or
 * `<data_dir>/master.key` in the embedded shape); the new key is given by reference only, because a
 * key typed on the command line stays in shell history and is visible in the process list. Nothing
 * here prints a key: only key ids (a SHA-256 prefix) and counts.
 */
import type { Command } from 'commander';
import { resolveSecrets } from '../config/secrets.js';
import { cliActor } from '../security/audit.js';
import { loadMasterKey, MasterKeyError, parseMasterKey, rotateMasterKey, RotationError, type LoadedMasterKey, type MasterKey, type RotateResult } from '../security/secrets/index.js';
import type { CliContext } from './cli-context.js';

/** Resolves `--new-key`; returns the key or the one-line reason it cannot be used. */
export function newKeyFromRef(ref: string, env: NodeJS.ProcessEnv = process.env): { key: MasterKey } | { error: string } {
  if (!ref.startsWith('env:') && !ref.startsWith('file:')) {
    return { error: '--new-key must be env:NAME or file:PATH; a key typed on the command line would stay in shell history and the process list' };
  }
  const { value, issues } = resolveSecrets(ref, { env });
  if (issues.length) return { error: `--new-key ${ref}: ${issues[0].message}` };
  try {
    return { key: parseMasterKey(String(value), `--new-key ${ref}`) };
  } catch (err) {
    if (err instanceof MasterKeyError) return { error: err.message };
    throw err;
  }
}

function nextSteps(ref: string, current: LoadedMasterKey): string[] {
  const where = current.origin === 'file'
    ? `Set MAIRUST_MASTER_KEY to the new key (the value of ${ref}), or replace ${current.path} with it`
    : `Set MAIRUST_MASTER_KEY (or security.master_key) to the new key (the value of ${ref}) on every node`;
  return [
    `1. ${where}.`,
    '2. Restart every node: until it restarts a node still holds the old key and cannot read the re-wrapped secrets.',
    '3. Keep the old key as long as you keep backups taken before this rotation: they can only be read with it.',
  ];
}

function summary(r: RotateResult) {
  return {
    old_key_id: r.oldKeyId,
    new_key_id: r.newKeyId,
    rewrapped: r.rewrapped,
    already_on_new_key: r.alreadyOnNewKey,
    total_secrets: r.total,
  };
}

export function register(program: Command, cli: CliContext): void {
  const secrets = program.command('secrets').description('secrets at rest (envelope encryption)');

  secrets
    .command('rotate-master-key')
    .description('re-wrap every data key with a new master key (the secrets themselves are not re-encrypted); safe to rerun after an interruption')
    .requiredOption('--new-key <ref>', 'the new master key as env:NAME or file:PATH (base64 of 32 bytes or 64 hex characters)')
    .action(async (opts: { newKey: string }) => {
      const next = newKeyFromRef(opts.newKey);
      if ('error' in next) {
        cli.fail(next.error, 2);
        return;
      }
      const app = await cli.open();
      try {
        const current = await loadMasterKey({ config: app.config, dialect: app.db.dialect, logger: app.logger });
        const result = await rotateMasterKey(app.db, current.key, next.key, {
          actor: cliActor,
          onBatch: ({ batches, rewrapped }) => {
            if (batches % 10 === 0) process.stderr.write(`re-wrapped ${rewrapped} data keys…\n`);
          },
        });
        const steps = nextSteps(opts.newKey, current);
        if (cli.globals().json) {
          cli.print({ ...summary(result), next_steps: steps });
        } else {
          cli.print(summary(result));
          cli.print(['', 'Next steps:', ...steps].join('\n'));
        }
      } catch (err) {
        if (err instanceof MasterKeyError || err instanceof RotationError) cli.fail(err.message, 1);
        else throw err;
      } finally {
        await app.close();
      }
    });
}
