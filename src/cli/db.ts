/**
 * `mairust db check [--fix] [--min-age SECONDS]` (SPEC §4 "Consistency", §12): orphan blobs and
 * messages whose blob is missing. Exit 0 when clean, 1 when problems remain.
 */
import { InvalidArgumentError, type Command } from 'commander';
import type { CliContext } from './cli-context.js';
import { DEFAULT_MIN_ORPHAN_AGE_MS, checkConsistency, remainingProblems, type ConsistencyReport } from '../core/consistency.js';

/** A week: a longer minimum age is almost certainly a typo (milliseconds instead of seconds). */
const MAX_MIN_AGE_SECONDS = 7 * 24 * 3600;

function parseSeconds(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n > MAX_MIN_AGE_SECONDS) {
    throw new InvalidArgumentError(`must be a whole number of seconds between 0 and ${MAX_MIN_AGE_SECONDS}`);
  }
  return n;
}

function summary(r: ConsistencyReport, fix: boolean) {
  return {
    blobs_checked: r.blobsChecked,
    message_blob_keys_checked: r.blobKeysChecked,
    orphan_blobs: r.orphanBlobCount,
    orphan_blobs_deleted: r.fixed.orphanBlobsDeleted,
    recent_unreferenced_blobs: r.recentUnreferencedBlobs,
    missing_blobs: r.missingBlobCount,
    mode: fix ? 'fix' : 'report only',
  };
}

export function register(program: Command, cli: CliContext): void {
  const db = program.command('db').description('metadata database maintenance');
  db.command('check')
    .description('find orphan blobs (referenced by no message) and messages whose blob is missing')
    .option('--fix', 'delete orphan blobs; messages with a missing blob are only reported, never deleted')
    .option(
      '--min-age <seconds>',
      'treat an unreferenced blob as orphan only when older than this (a delivery may be committing)',
      parseSeconds,
      DEFAULT_MIN_ORPHAN_AGE_MS / 1000,
    )
    .action(async (opts: { fix?: boolean; minAge: number }) => {
      const fix = opts.fix === true;
      const app = await cli.open();
      try {
        const report = await checkConsistency(
          { db: app.db, blobs: app.blobs, logger: app.logger },
          { fix, minOrphanAgeMs: opts.minAge * 1000 },
        );
        if (cli.globals().json) {
          cli.print(report);
        } else {
          cli.print(summary(report, fix));
          if (report.orphanBlobs.length > 0) cli.print(report.orphanBlobs.map((key) => ({ orphan_blob: key })));
          if (report.missingBlobs.length > 0) cli.print(report.missingBlobs.map((m) => ({ message_id: m.messageId, missing_blob: m.blobKey })));
        }
        const remaining = remainingProblems(report);
        if (remaining > 0) {
          const hints: string[] = [];
          if (report.orphanBlobCount > report.fixed.orphanBlobsDeleted) hints.push('run with --fix to delete orphan blobs');
          if (report.missingBlobCount > 0) {
            hints.push('messages with a missing blob are kept: restore the blob from a backup, or delete the message (API/IMAP) and let the purge job remove it');
          }
          cli.fail(`${remaining} consistency problem(s) remain: ${hints.join('; ')}`);
        }
      } finally {
        await app.close();
      }
    });
}
