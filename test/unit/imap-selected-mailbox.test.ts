/**
 * The pure parts of the selected-state view: sequence-set resolution (RFC 9051 §6.4.8, §9
 * seq-number; RFC 5182 `$`), the VANISHED (EARLIER) computations of QRESYNC (RFC 7162 §3.2.5,
 * §3.2.6), and the view's announcement order over a fake mailbox-state service (EXPUNGE shifts,
 * VANISHED with QRESYNC, EXISTS, FETCH of flag changes by others, no EXPUNGE when not allowed).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { Changes, Folder } from '../../src/core/mailbox-state/index.js';
import { tenantScope } from '../../src/core/scope.js';
import { encodeValues, type ImapValue } from '../../src/protocols/imap/encoder/index.js';
import { parseSequenceSet } from '../../src/protocols/imap/parser/sequence-set.js';
import type { MailAccessServices } from '../../src/protocols/imap/services.js';
import { lowerBound, openSelectedMailbox, resolveSequenceSet } from '../../src/protocols/imap/session/selected-mailbox.js';
import { BadSequenceError, type Enableable } from '../../src/protocols/imap/session/types.js';
import { uidInSet, vanishedFromKnown } from '../../src/protocols/imap/commands/_vanished.js';
import type { ChangeEvent, ChangeHandler } from '../../src/store/events/change-bus.js';

const uids = [3, 5, 8, 10, 42];
const r = (set: string, byUid: boolean, saved: number[] = []) => resolveSequenceSet(uids, parseSequenceSet(set), byUid, saved);

describe('resolveSequenceSet — message sequence numbers', () => {
  test('numbers, ranges, reversed ranges and * (the last message)', () => {
    assert.deepEqual(r('1', false), [3]);
    assert.deepEqual(r('2:4', false), [5, 8, 10]);
    assert.deepEqual(r('4:2', false), [5, 8, 10]);
    assert.deepEqual(r('*', false), [42]);
    assert.deepEqual(r('3:*', false), [8, 10, 42]);
    assert.deepEqual(r('*:4', false), [10, 42]);
    assert.deepEqual(r('1,3,1:2', false), [3, 5, 8]);
  });

  test('a number past EXISTS is BadSequenceError, also * in an empty mailbox', () => {
    assert.throws(() => r('6', false), (e: Error) => e instanceof BadSequenceError && e.message === 'Sequence number out of range (the mailbox has 5 messages)');
    assert.throws(() => r('4:9', false), BadSequenceError);
    assert.throws(() => resolveSequenceSet([], parseSequenceSet('*'), false, []), (e: Error) => e instanceof BadSequenceError && e.message === 'No messages in the mailbox');
    assert.throws(() => resolveSequenceSet([], parseSequenceSet('1:*'), false, []), BadSequenceError);
  });
});

describe('resolveSequenceSet — UIDs', () => {
  test('existing UIDs in ranges; missing UIDs are left out', () => {
    assert.deepEqual(r('5', true), [5]);
    assert.deepEqual(r('4', true), []);
    assert.deepEqual(r('1:9', true), [3, 5, 8]);
    assert.deepEqual(r('9:1', true), [3, 5, 8]);
    assert.deepEqual(r('4,6:7,100', true), []);
  });

  test('* is the largest UID; a range past the end still includes the last message (RFC 9051 §6.4.8)', () => {
    assert.deepEqual(r('*', true), [42]);
    assert.deepEqual(r('10:*', true), [10, 42]);
    assert.deepEqual(r('559:*', true), [42]);
    assert.deepEqual(r('1:*', true), uids);
  });

  test('an empty folder matches nothing, * included', () => {
    assert.deepEqual(resolveSequenceSet([], parseSequenceSet('1:*'), true, []), []);
    assert.deepEqual(resolveSequenceSet([], parseSequenceSet('*'), true, []), []);
  });

  test('$ is the saved result, without messages expunged since (RFC 5182 §2.1)', () => {
    assert.deepEqual(r('$', true, [42, 5, 7]), [5, 42]);
    assert.deepEqual(r('$', false, [8, 3]), [3, 8]);
    assert.deepEqual(r('$', true, []), []);
  });

  test('lowerBound', () => {
    assert.equal(lowerBound(uids, 1), 0);
    assert.equal(lowerBound(uids, 5), 1);
    assert.equal(lowerBound(uids, 6), 2);
    assert.equal(lowerBound(uids, 43), 5);
  });
});

describe('QRESYNC VANISHED computations', () => {
  test('vanishedFromKnown: known UIDs that are not live, below UIDNEXT, as ranges', () => {
    const live = [3, 5, 8, 10, 42];
    assert.equal(vanishedFromKnown(parseSequenceSet('1:10'), live, 43), '1:2,4,6:7,9');
    assert.equal(vanishedFromKnown(parseSequenceSet('3,5,8'), live, 43), '');
    assert.equal(vanishedFromKnown(parseSequenceSet('40:50'), live, 43), '40:41');
    // Huge ranges are never enumerated.
    assert.equal(vanishedFromKnown(parseSequenceSet('1:4294967295'), live, 43), '1:2,4,6:7,9,11:41');
    assert.equal(vanishedFromKnown(parseSequenceSet('9:1,20:25,22:30'), live, 43), '1:2,4,6:7,9,20:30');
  });

  test('uidInSet: * is unbounded', () => {
    const set = parseSequenceSet('2:4,10:*');
    assert.equal(uidInSet(3, set), true);
    assert.equal(uidInSet(5, set), false);
    assert.equal(uidInSet(1_000_000, set), true);
  });
});

// ── the view over a fake state service and bus ──────────────────────────────────────────────────

function fakeServices(initial: number[]) {
  let handler: ChangeHandler | null = null;
  let unsubscribed = false;
  const state = {
    live: [...initial],
    highest: 10,
    next: { highestModseq: 10, changed: [], expunged: [] } as Changes,
    fail: false as boolean | 'gone',
    /** Keep `next` after a read (a real service answers the same changes to the same question). */
    keep: false,
    async folderStatus() {
      return { messages: state.live.length, unseen: 0, recent: 0 as const, uidNext: 100, uidValidity: 7, highestModseq: state.highest, size: 0 };
    },
    async keywordsInUse() {
      return [];
    },
    async listUids() {
      return [...state.live];
    },
    async changesSince(_scope: unknown, _folder: string, modseq: number) {
      if (state.fail === 'gone') throw Object.assign(new Error('folder not found: f1'), { code: 'NOT_FOUND' });
      if (state.fail) throw new Error('database down');
      const c = state.next;
      if (!state.keep) state.next = { highestModseq: c.highestModseq, changed: [], expunged: [] };
      await new Promise((resolve) => setImmediate(resolve));
      return { ...c, changed: c.changed.filter((x) => x.modseq > modseq) };
    },
  };
  const bus = {
    kind: 'memory' as const,
    async publish() {},
    subscribe(h: ChangeHandler) {
      handler = h;
      return () => {
        unsubscribed = true;
      };
    },
    async close() {},
  };
  const services = { state, bus } as unknown as MailAccessServices;
  return {
    services,
    state,
    emit: (e: Partial<ChangeEvent>) => handler?.({ tenantId: 't', mailboxId: 'm', kind: 'flags', ...e } as ChangeEvent),
    get unsubscribed() {
      return unsubscribed;
    },
  };
}

const folder = { id: 'f1', mailboxId: 'm', name: 'INBOX' } as Folder;

async function open(initial: number[], enabled: Enableable[] = []) {
  const fake = fakeServices(initial);
  const lines: string[] = [];
  const send = (...values: ImapValue[]) => lines.push(`* ${encodeValues(values, { utf8: false }).toString('utf8')}`);
  const opened = await openSelectedMailbox({
    services: fake.services,
    scope: tenantScope('t'),
    folder,
    readOnly: false,
    enabled: new Set(enabled),
    send,
    log: pino({ level: 'silent' }),
  });
  return { ...opened, fake, lines };
}

describe('SelectedMailboxView.sync', () => {
  test('expunges in ascending order, each shifting the next; then EXISTS; then FETCH of flags by others', async () => {
    const { view, fake, lines } = await open([1, 2, 3, 4, 5]);
    fake.state.next = {
      highestModseq: 20,
      changed: [
        { uid: 5, modseq: 15, flags: ['\\Seen'] },
        { uid: 6, modseq: 16, flags: [] },
        { uid: 7, modseq: 17, flags: ['\\Flagged'] },
      ],
      expunged: [2, 4, 99],
    };
    fake.emit({ folderId: 'f1' });
    await view.sync({ allowExpunge: true });
    assert.deepEqual(lines, ['* 2 EXPUNGE', '* 3 EXPUNGE', '* 5 EXISTS', '* 3 FETCH (UID 5 FLAGS (\\Seen))']);
    assert.deepEqual(view.uids, [1, 3, 5, 6, 7]);
    assert.equal(view.highestModseq, 20);
  });

  test('without allowExpunge the expunged stay numbered (pending) and EXISTS counts them', async () => {
    const { view, fake, lines } = await open([1, 2, 3]);
    fake.state.next = { highestModseq: 12, changed: [{ uid: 4, modseq: 12, flags: [] }, { uid: 2, modseq: 11, flags: ['\\Seen'] }], expunged: [1] };
    await view.sync({ allowExpunge: false, force: true });
    assert.deepEqual(lines, ['* 4 EXISTS', '* 2 FETCH (UID 2 FLAGS (\\Seen))']);
    assert.equal(view.isPendingExpunge(1), true);
    assert.equal(view.seqOf(1), 1);
    lines.length = 0;
    // Not dirty: no read, but the pending expunge is announced once allowed.
    await view.sync({ allowExpunge: true });
    assert.deepEqual(lines, ['* 1 EXPUNGE']);
    assert.deepEqual(view.uids, [2, 3, 4]);
    assert.equal(view.isPendingExpunge(1), false);
  });

  test('QRESYNC: VANISHED instead of EXPUNGE, MODSEQ in FETCH', async () => {
    const { view, fake, lines } = await open([1, 2, 3, 4], ['QRESYNC']);
    fake.state.next = { highestModseq: 30, changed: [{ uid: 4, modseq: 30, flags: ['$Work'] }], expunged: [1, 2] };
    await view.sync({ allowExpunge: true, force: true });
    assert.deepEqual(lines, ['* VANISHED 1:2', '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)',
      '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)] Flags permitted',
      '* 2 FETCH (UID 4 FLAGS ($Work) MODSEQ (30))']);
  });

  test('own changes noted with noteFlags are not announced again', async () => {
    const { view, fake, lines } = await open([1, 2]);
    view.noteFlags([{ uid: 1, modseq: 11, flags: ['\\Seen'] }]);
    fake.state.next = { highestModseq: 12, changed: [{ uid: 1, modseq: 11, flags: ['\\Seen'] }, { uid: 2, modseq: 12, flags: ['\\Answered'] }], expunged: [] };
    await view.sync({ allowExpunge: true, force: true });
    assert.deepEqual(lines, ['* 2 FETCH (UID 2 FLAGS (\\Answered))']);
  });

  test('without a change event and without force nothing is read', async () => {
    const { view, fake, lines } = await open([1]);
    fake.state.next = { highestModseq: 12, changed: [{ uid: 2, modseq: 12, flags: [] }], expunged: [] };
    await view.sync({ allowExpunge: true });
    assert.deepEqual(lines, []);
    fake.emit({ folderId: 'other-folder' });
    await view.sync({ allowExpunge: true });
    assert.deepEqual(lines, []);
    fake.emit({ kind: 'resync', mailboxId: '*' });
    await view.sync({ allowExpunge: true });
    assert.deepEqual(lines, ['* 2 EXISTS']);
  });

  test('a failed read announces nothing, keeps the view and retries at the next sync', async () => {
    const { view, fake, lines } = await open([1, 2]);
    fake.state.fail = true;
    fake.state.next = { highestModseq: 12, changed: [], expunged: [2] };
    fake.emit({ folderId: 'f1' });
    await view.sync({ allowExpunge: true });
    assert.deepEqual(lines, []);
    assert.deepEqual(view.uids, [1, 2]);
    fake.state.fail = false;
    await view.sync({ allowExpunge: true });
    assert.deepEqual(lines, ['* 2 EXPUNGE']);
  });

  test('concurrent syncs run one after the other and announce a change once', async () => {
    const { view, fake, lines } = await open([1, 2]);
    fake.state.keep = true;
    fake.state.next = { highestModseq: 20, changed: [{ uid: 3, modseq: 20, flags: [] }], expunged: [] };
    await Promise.all([view.sync({ allowExpunge: true, force: true }), view.sync({ allowExpunge: true, force: true })]);
    assert.deepEqual(lines, ['* 3 EXISTS']);
  });

  test('a folder deleted underneath: the view is gone and stops reading', async () => {
    const { view, fake, lines } = await open([1, 2]);
    fake.state.fail = 'gone';
    await view.sync({ allowExpunge: true, force: true });
    assert.equal(view.gone, true);
    fake.state.fail = false;
    fake.state.next = { highestModseq: 12, changed: [{ uid: 3, modseq: 12, flags: [] }], expunged: [] };
    await view.sync({ allowExpunge: true, force: true });
    assert.deepEqual(lines, []);
    assert.deepEqual(view.uids, [1, 2]);
  });

  test('onChange listeners run on events of the folder; close unsubscribes', async () => {
    const { view, fake } = await open([1]);
    let calls = 0;
    const off = view.onChange(() => calls++);
    fake.emit({ folderId: 'f1' });
    fake.emit({ folderId: 'f2' });
    assert.equal(calls, 1);
    off();
    fake.emit({ folderId: 'f1' });
    assert.equal(calls, 1);
    view.close();
    assert.equal(fake.unsubscribed, true);
  });

  test('UIDNEXT reported is above every UID shown', async () => {
    const fake = fakeServices([1, 150]);
    const opened = await openSelectedMailbox({
      services: fake.services,
      scope: tenantScope('t'),
      folder,
      readOnly: true,
      enabled: new Set(),
      send: () => {},
      log: pino({ level: 'silent' }),
    });
    assert.equal(opened.uidNext, 151);
    assert.equal(opened.view.readOnly, true);
  });
});
