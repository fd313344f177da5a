/**
 * The POP3 maildrop snapshot (RFC 1939 §5, §7): paging through listEntries, message numbers,
 * deletion and retrieval marks, RSET, and the unique-id listing — over a listEntries that follows
 * the mailbox-state service's paging contract (ascending UIDs, `afterUid`, `limit`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Entry, Folder, ListEntriesOptions } from '../../src/core/mailbox-state/index.js';
import { tenantScope } from '../../src/core/scope.js';
import { Maildrop, type EntrySource } from '../../src/protocols/pop3/maildrop.js';

const scope = tenantScope('t1');
const folder: Folder = {
  id: 'f1',
  tenantId: 't1',
  mailboxId: 'm1',
  name: 'INBOX',
  specialUse: null,
  uidValidity: 1700000000,
  uidNext: 1,
  highestModseq: 1,
  subscribed: true,
  createdAt: 0,
};

function entries(uids: number[]): Entry[] {
  return uids.map((uid) => ({
    id: `e${uid}`,
    folderId: 'f1',
    mailboxId: 'm1',
    messageId: `msg-${uid}`,
    uid,
    modseq: uid,
    flags: [],
    keywords: [],
    internalDate: 0,
    size: uid * 10,
    deletedAt: null,
  }));
}

/** Serves `all` like listEntries does and records each page asked for. */
function source(all: Entry[]): EntrySource & { calls: ListEntriesOptions[] } {
  const calls: ListEntriesOptions[] = [];
  return {
    calls,
    async listEntries(s, folderId, opts = {}) {
      assert.equal(s, scope);
      assert.equal(folderId, 'f1');
      calls.push({ ...opts });
      return all.filter((e) => opts.afterUid === undefined || e.uid > opts.afterUid).slice(0, opts.limit ?? 1000);
    },
  };
}

test('loads page by page (never one unbounded read) and numbers messages in UID order', async () => {
  const uids = Array.from({ length: 25 }, (_, i) => 3 * i + 2);
  const src = source(entries(uids));
  const drop = await Maildrop.load(src, scope, folder, 10);
  assert.deepEqual(src.calls, [
    { limit: 10, afterUid: undefined },
    { limit: 10, afterUid: 29 },
    { limit: 10, afterUid: 59 },
  ]);
  assert.equal(drop.count, 25);
  assert.equal(drop.highest, 25);
  assert.equal(drop.octets, uids.reduce((s, u) => s + u * 10, 0));
  assert.deepEqual(drop.get(1), { msg: 1, uid: 2, size: 20, messageId: 'msg-2' });
  assert.deepEqual(drop.get(25), { msg: 25, uid: 74, size: 740, messageId: 'msg-74' });
  assert.equal(drop.get(0), null);
  assert.equal(drop.get(26), null);
  assert.equal(drop.get(1.5), null);
  assert.equal(drop.uniqueId(drop.get(1)!), '1700000000.2');
});

test('a page exactly full asks once more and stops at the empty page', async () => {
  const src = source(entries([1, 2, 3, 4]));
  const drop = await Maildrop.load(src, scope, folder, 2);
  assert.equal(src.calls.length, 3);
  assert.equal(drop.count, 4);
});

test('an empty INBOX', async () => {
  const drop = await Maildrop.load(source([]), scope, folder);
  assert.equal(drop.count, 0);
  assert.equal(drop.octets, 0);
  assert.deepEqual([...drop.live()], []);
  assert.deepEqual(drop.deletedUids(), []);
});

test('deletion marks hide a message; RSET brings it back; retrieved marks skip deleted ones', async () => {
  const drop = await Maildrop.load(source(entries([5, 6, 7])), scope, folder);
  assert.equal(drop.markDeleted(2), true);
  assert.equal(drop.markDeleted(2), false, 'already deleted');
  assert.equal(drop.markDeleted(9), false, 'no such message');
  assert.equal(drop.get(2), null);
  assert.equal(drop.count, 2);
  assert.equal(drop.octets, 50 + 70);
  assert.deepEqual([...drop.live()].map((m) => m.msg), [1, 3]);
  assert.equal(drop.highest, 3, 'numbers are not reused');
  drop.markRetrieved(1);
  drop.markRetrieved(2);
  drop.markDeleted(3);
  drop.markRetrieved(3);
  assert.deepEqual(drop.deletedUids(), [6, 7]);
  assert.deepEqual(drop.retrievedUids(), [5]);
  drop.reset();
  assert.equal(drop.count, 3);
  assert.equal(drop.octets, 180);
  assert.deepEqual(drop.deletedUids(), []);
  assert.deepEqual(drop.retrievedUids(), [5], 'RSET does not undo a retrieval');
  drop.markRetrieved(2);
  drop.markDeleted(1);
  assert.deepEqual(drop.retrievedUids(), [6], 'a retrieved message that is deleted gets no \\Seen');
});
