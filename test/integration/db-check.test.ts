/** `checkConsistency` and `mairust db check [--fix]` (SPEC §4 "Consistency"), in both shapes. */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Command, CommanderError } from 'commander';
import { freshDatabase, type TestDatabase } from '../support/shape.js';
import { freshBlobStore } from '../support/blobs.js';
import { newBlobKey, type BlobStore } from '../../src/store/blob/blob-store.js';
import type { Database } from '../../src/store/db/database.js';
import type { AppContext } from '../../src/app/context.js';
import type { CliContext } from '../../src/cli/cli-context.js';
import { checkConsistency, remainingProblems } from '../../src/core/consistency.js';
import { register } from '../../src/cli/db.js';
import { DAY_MS, addMailbox, addMessageWithEntry, addTenant, blobExists, messageExists } from '../support/purge-fixtures.js';

describe('db check', () => {
  let tdb: TestDatabase;
  let store: Awaited<ReturnType<typeof freshBlobStore>>;
  let db: Database;
  let blobs: BlobStore;
  let good: { messageId: string; blobKey: string };

  before(async () => {
    tdb = await freshDatabase();
    store = await freshBlobStore();
    db = tdb.db;
    blobs = store.blobs;
    const mb = await addMailbox(db, await addTenant(db));
    good = await addMessageWithEntry(db, blobs, mb);
  });
  after(async () => {
    await store?.remove();
    await tdb?.drop();
  });

  /** Runs `mairust db check …` against this suite's database and blob store. */
  async function runCli(args: string[]): Promise<{ exitCode: number; printed: unknown[]; errors: string[] }> {
    const printed: unknown[] = [];
    const errors: string[] = [];
    let exitCode = 0;
    let closed = false;
    const cli: CliContext = {
      globals: () => ({ json: true }),
      open: async () => ({ db, blobs, logger: { warn() {} }, close: async () => void (closed = true) }) as unknown as AppContext,
      print: (v) => printed.push(v),
      fail: (message, code = 1) => {
        errors.push(message);
        exitCode = code;
      },
    };
    const program = new Command('mairust').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    register(program, cli);
    await program.parseAsync(['db', 'check', ...args], { from: 'user' });
    assert.equal(closed, true, 'the app is closed after the command');
    return { exitCode, printed, errors };
  }

  test('a clean store reports nothing', async () => {
    const report = await checkConsistency({ db, blobs }, { fix: false, minOrphanAgeMs: 0 });
    assert.deepEqual(report.orphanBlobs, []);
    assert.deepEqual(report.missingBlobs, []);
    assert.equal(report.blobsChecked, 1);
    assert.equal(report.blobKeysChecked, 1);
    assert.equal(remainingProblems(report), 0);
  });

  test('an orphan blob is reported, spared while young, and removed with fix', async () => {
    const orphan = newBlobKey();
    await blobs.put(orphan, Buffer.from('no row refers to me'));

    const reportOnly = await checkConsistency({ db, blobs }, { fix: false, minOrphanAgeMs: 0 });
    assert.deepEqual(reportOnly.orphanBlobs, [orphan]);
    assert.equal(reportOnly.fixed.orphanBlobsDeleted, 0);
    assert.equal(remainingProblems(reportOnly), 1);
    assert.equal(await blobExists(blobs, orphan), true, 'report-only deletes nothing');

    // Default minimum age (1 h): a blob written today may belong to a delivery still committing.
    const young = await checkConsistency({ db, blobs }, { fix: true });
    assert.deepEqual(young.orphanBlobs, []);
    assert.equal(young.recentUnreferencedBlobs, 1);
    assert.equal(await blobExists(blobs, orphan), true);
    // Three days later the same blob is provably old enough.
    const later = await checkConsistency({ db, blobs }, { fix: false, now: Date.now() + 3 * DAY_MS });
    assert.deepEqual(later.orphanBlobs, [orphan]);

    const fixed = await checkConsistency({ db, blobs }, { fix: true, minOrphanAgeMs: 0 });
    assert.deepEqual(fixed.orphanBlobs, [orphan]);
    assert.equal(fixed.fixed.orphanBlobsDeleted, 1);
    assert.equal(remainingProblems(fixed), 0);
    assert.equal(await blobExists(blobs, orphan), false);
    assert.equal(await blobExists(blobs, good.blobKey), true, 'referenced blob untouched');

    const again = await checkConsistency({ db, blobs }, { fix: false, minOrphanAgeMs: 0 });
    assert.equal(again.orphanBlobCount, 0);
  });

  test('CLI: exit 1 while an orphan remains, --fix removes it and exits 0', async () => {
    const orphan = newBlobKey();
    await blobs.put(orphan, Buffer.from('orphan for the cli'));

    const check = await runCli(['--min-age', '0']);
    assert.equal(check.exitCode, 1);
    assert.match(check.errors[0], /1 consistency problem\(s\) remain: run with --fix/);
    const report = check.printed[0] as { orphanBlobs: string[] };
    assert.deepEqual(report.orphanBlobs, [orphan]);
    assert.equal(await blobExists(blobs, orphan), true);

    const fix = await runCli(['--fix', '--min-age', '0']);
    assert.equal(fix.exitCode, 0, fix.errors.join('\n'));
    assert.equal((fix.printed[0] as { fixed: { orphanBlobsDeleted: number } }).fixed.orphanBlobsDeleted, 1);
    assert.equal(await blobExists(blobs, orphan), false);

    await assert.rejects(runCli(['--min-age', 'soon']), (err: unknown) => err instanceof CommanderError && /whole number of seconds/.test(err.message));
  });

  test('a message whose blob is missing is reported and never deleted', async () => {
    const mb = await addMailbox(db, await addTenant(db));
    const broken = await addMessageWithEntry(db, blobs, mb);
    await blobs.delete(broken.blobKey);

    const report = await checkConsistency({ db, blobs }, { fix: true, minOrphanAgeMs: 0 });
    assert.deepEqual(report.missingBlobs, [{ messageId: broken.messageId, blobKey: broken.blobKey }]);
    assert.equal(report.orphanBlobCount, 0);
    assert.equal(remainingProblems(report), 1);
    assert.equal(await messageExists(db, broken.messageId), true, '--fix keeps the row');

    const cli = await runCli(['--fix']);
    assert.equal(cli.exitCode, 1);
    assert.match(cli.errors[0], /missing blob are kept: restore the blob from a backup/);

    // The operator restores the blob from a backup under the same key: clean again.
    await blobs.put(broken.blobKey, Buffer.from('restored body'));
    const restored = await runCli([]);
    assert.equal(restored.exitCode, 0, restored.errors.join('\n'));
  });
});
