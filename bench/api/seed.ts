/**
 * Seeds ONE mailbox with N messages for the API benchmark, fast, writing exactly the rows the
 * mailbox-state service writes when it stores and delivers a message (store-deliver.ts +
 * deliver.ts): the `messages` row (`messageRow`), its text-index row (`writeTextIndex`), the folder
 * entry with UID/MODSEQ from `allocate`, and the quota counters (`applyUsage`) — the service's own
 * functions, called inside one `writeTransaction` per batch instead of one per message.
 * The only differences from N calls of `storeAndDeliver`:
 *
 *  - one transaction, one UID/MODSEQ allocation per folder and one quota update per BATCH
 *    (what `deliverWithin` does for a message with several targets, applied to many messages);
 *  - no change events are published (nothing listens in the benchmark);
 *  - blob files are written straight into the fs blob store's layout (`<root>/<key>`, key from
 *    `newBlobKey`, sha256 of the bytes) without the store's fsync/rename recipe: durability is not
 *    what is measured, and 100 000 fsyncs would make seeding take minutes. Reads go through
 *    `FsBlobStore.get` as in production, and a sample is read back and checked after seeding.
 *
 * Parsing every message with mailparser (metadata) and the MIME structure parser costs several
 * milliseconds each, so only `distinct` messages are generated and parsed; message i is a copy of
 * content `i mod distinct` (stepped so neighbours differ) with its own number in the Subject and
 * Message-ID and its own Date (fixed-width fields: every MIME byte offset of the template holds).
 * A sample of copies is re-parsed to prove their metadata and structure equal the patched ones.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { sql } from 'kysely';
import type { AppContext } from '../../src/app/context.js';
import { blobStoreConfig } from '../../src/app/context.js';
import { systemScope, tenantScope } from '../../src/core/scope.js';
import { newBlobKey } from '../../src/store/blob/blob-store.js';
import { newId } from '../../src/store/db/database.js';
import { extractMessageMeta, type MessageMeta } from '../../src/mail/extract.js';
import { parseMimeStructure } from '../../src/mail/mime/index.js';
import { allocate } from '../../src/core/mailbox-state/allocate.js';
import type { Ctx } from '../../src/core/mailbox-state/context.js';
import { baseDb, chunks, writeTransaction, type EntryRow } from '../../src/core/mailbox-state/db.js';
import { insertEntries } from '../../src/core/mailbox-state/entry-writes.js';
import { classifyFlags } from '../../src/core/mailbox-state/flag-rules.js';
import { messageRow } from '../../src/core/mailbox-state/messages.js';
import { applyUsage, tenantStorageLimitFromPlans } from '../../src/core/mailbox-state/quota.js';
import { textIndexRowFromMeta, writeTextIndex } from '../../src/core/search/text-index.js';
import { copyMessage, formatNumber, generateMessage, prng, type GeneratedMessage } from './messages.js';

export const BENCH_PASSWORD = 'bench password that is long enough';

export interface SeedOptions {
  messages: number;
  /** Distinct contents to generate and parse (default 2 000). */
  distinct: number;
  /** Messages per transaction. */
  batch: number;
  log: (line: string) => void;
}

export interface Seeded {
  tenantId: string;
  userId: string;
  mailboxId: string;
  address: string;
  /** Folder entry ids = the API's message ids. */
  entryIds: string[];
  bytes: number;
  seconds: number;
  kinds: Record<string, number>;
}

interface Template {
  message: GeneratedMessage;
  meta: MessageMeta;
  structureJson: string;
}

/** The metadata of a copy: the template's with the new number and date. */
function patchedMeta(t: Template, copy: GeneratedMessage): MessageMeta {
  const from = `#${formatNumber(t.message.number)}`;
  const to = `#${formatNumber(copy.number)}`;
  const subject = t.meta.subject;
  return {
    ...t.meta,
    subject: subject && subject.endsWith(from) ? subject.slice(0, -from.length) + to : subject,
    messageIdHeader: t.meta.messageIdHeader?.replace(formatNumber(t.message.number), formatNumber(copy.number)) ?? null,
    date: copy.date,
  };
}

/** Where the system puts a message: 85 % INBOX, 10 % Archive, 5 % Sent; flags as a reader leaves them. */
function placement(i: number, total: number): { folder: 'INBOX' | 'Archive' | 'Sent'; flags: string[]; keywords: string[] } {
  const r = prng(0xf1a90000 + i);
  const x = r();
  const folder = x < 0.85 ? 'INBOX' : x < 0.95 ? 'Archive' : 'Sent';
  const flags: string[] = [];
  // The newest 2 % are mostly unread; older mail almost all read.
  if (r() < (i > total * 0.98 ? 0.3 : 0.95) || folder === 'Sent') flags.push('\\Seen');
  if (r() < 0.04) flags.push('\\Flagged');
  if (r() < 0.1) flags.push('\\Answered');
  const keywords = r() < 0.03 ? ['$Important'] : r() < 0.02 ? ['project-x'] : [];
  return { folder, flags, keywords };
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

export async function seedMailbox(app: AppContext, opts: SeedOptions): Promise<Seeded> {
  const started = performance.now();
  const { tenancy } = app;
  const tenant = await tenancy.tenants.create(systemScope, { name: 'bench' });
  const scope = tenantScope(tenant.id);
  await tenancy.domains.add(scope, { name: 'bench.test' });
  const address = 'reader@bench.test';
  const user = await tenancy.users.add(scope, { tenantId: tenant.id, email: address, password: BENCH_PASSWORD, role: 'user' });
  const mailbox = await tenancy.mailboxes.add(scope, { address, user: user.id, quotaBytes: 0 });
  const folders = new Map((await app.mailboxState.listFolders(scope, mailbox.id)).map((f) => [f.name, f]));
  for (const name of ['INBOX', 'Archive', 'Sent']) if (!folders.has(name)) throw new Error(`default folder ${name} missing`);

  const blobCfg = blobStoreConfig(app.config);
  if (blobCfg.backend !== 'fs') throw new Error('the benchmark writes blobs into the fs store; set storage.backend: fs');
  const blobRoot = blobCfg.fs.path;

  // The same context the service builds (service.ts), for the service functions called below.
  const ctx: Ctx = {
    db: app.db,
    blobs: app.blobs,
    bus: app.bus,
    previewBytes: app.config.mail.preview_bytes,
    nodeId: app.nodeId,
    logger: undefined,
    tenantStorageLimit: tenantStorageLimitFromPlans(() => ({ plans: app.config.plans, defaultPlan: app.config.default_plan })),
  };
  const extractOpts = { previewBytes: app.config.mail.preview_bytes };

  // Dates: evenly over the last three years, oldest first, a little jitter.
  const endMs = Date.now() - 86_400_000;
  const startMs = endMs - 3 * 365 * 86_400_000;
  const step = (endMs - startMs) / opts.messages;
  const dateOf = (i: number) => Math.round(startMs + step * i + prng(0xda7e0000 + i)() * step * 0.9);

  const distinct = Math.min(opts.distinct, opts.messages);
  opts.log(`generating and parsing ${distinct} distinct messages …`);
  const templates: Template[] = [];
  for (let t = 0; t < distinct; t++) {
    const message = generateMessage(t, address, t, dateOf(t));
    templates.push({
      message,
      meta: await extractMessageMeta(message.raw, extractOpts),
      structureJson: JSON.stringify(parseMimeStructure(message.raw)),
    });
  }
  // A prime step visits every template and keeps neighbouring messages different.
  const templateOf = (i: number) => templates[(i * 7919) % distinct];

  // Proof that a copy is what the service would have stored for those bytes.
  const samples = [1, 2, 3, distinct + 1, Math.floor(opts.messages / 2), opts.messages - 1].filter((i) => i >= distinct && i < opts.messages);
  for (const i of samples) {
    const t = templateOf(i);
    const copy = copyMessage(t.message, i, dateOf(i));
    const meta = await extractMessageMeta(copy.raw, extractOpts);
    if (!isDeepStrictEqual(meta, patchedMeta(t, copy))) throw new Error(`copy ${i}: metadata differs from the patched template metadata`);
    if (JSON.stringify(parseMimeStructure(copy.raw)) !== t.structureJson) throw new Error(`copy ${i}: MIME structure differs from the template's`);
  }

  opts.log(`parsed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const entryIds: string[] = new Array(opts.messages);
  const kinds: Record<string, number> = {};
  let bytes = 0;
  let lastReport = performance.now();
  // Where seeding time goes (ms), reported with the progress lines.
  const phase = { prepare: 0, blobs: 0, rows: 0, textIndex: 0, entries: 0, commit: 0 };
  let mark = performance.now();
  const lap = (name: keyof typeof phase) => {
    const t = performance.now();
    phase[name] += t - mark;
    mark = t;
  };
  for (let first = 0; first < opts.messages; first += opts.batch) {
    const last = Math.min(opts.messages, first + opts.batch);
    const batch: { i: number; message: GeneratedMessage; template: Template; meta: MessageMeta; key: string; sha256: string }[] = [];
    for (let i = first; i < last; i++) {
      const template = templateOf(i);
      const message = i < distinct ? template.message : copyMessage(template.message, i, dateOf(i));
      const meta = i < distinct ? template.meta : patchedMeta(template, message);
      batch.push({ i, message, template, meta, key: newBlobKey('msg'), sha256: createHash('sha256').update(message.raw).digest('hex') });
      kinds[message.kind] = (kinds[message.kind] ?? 0) + 1;
      bytes += message.raw.length;
    }
    lap('prepare');
    // Blobs first, as the service does (ARCHITECTURE §1.5: never a row without its blob).
    await mapLimit(batch, 16, async (b) => {
      const path = join(blobRoot, ...b.key.split('/'));
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, b.message.raw);
    });
    lap('blobs');

    await writeTransaction(app.db, async (trx) => {
      const rows = batch.map((b) => ({
        b,
        row: messageRow(newId(), tenant.id, { key: b.key, size: b.message.raw.length, sha256: b.sha256 }, b.meta, {
          receivedAt: b.message.date,
          structureJson: b.template.structureJson,
        }),
      }));
      for (const part of chunks(rows, 400)) await trx.insertInto('messages').values(part.map((r) => r.row)).execute();
      lap('rows');
      for (const { b, row } of rows) await writeTextIndex(baseDb(trx), app.db.dialect, textIndexRowFromMeta(row.id, tenant.id, b.meta));
      lap('textIndex');

      // One allocation per folder (ascending id: the lock order of db.ts), UIDs in date order.
      const byFolder = new Map<string, typeof rows>();
      const places = new Map<number, ReturnType<typeof placement>>();
      for (const r of rows) {
        const place = placement(r.b.i, opts.messages);
        places.set(r.b.i, place);
        const folderId = folders.get(place.folder)!.id;
        const list = byFolder.get(folderId);
        if (list) list.push(r);
        else byFolder.set(folderId, [r]);
      }
      const entries: EntryRow[] = [];
      let size = 0;
      for (const folderId of [...byFolder.keys()].sort()) {
        const list = byFolder.get(folderId)!;
        const a = await allocate(trx, folderId, list.length, list.length);
        list.forEach((r, k) => {
          const place = places.get(r.b.i)!;
          const flags = classifyFlags(place.flags, place.keywords);
          const id = newId();
          entryIds[r.b.i] = id;
          size += r.row.size;
          entries.push({
            id,
            tenant_id: tenant.id,
            mailbox_id: mailbox.id,
            folder_id: folderId,
            message_id: r.row.id,
            uid: a.firstUid + k,
            modseq: a.firstModseq + k,
            flags_json: JSON.stringify(flags.flags),
            keywords_json: JSON.stringify(flags.keywords),
            internal_date: r.b.message.date,
            size: r.row.size,
            deleted_at: null,
          });
        });
      }
      await insertEntries(trx, entries);
      await applyUsage(ctx, trx, tenant.id, new Map([[mailbox.id, size]]));
      lap('entries');
    });
    lap('commit');

    if (performance.now() - lastReport > 5000 || last === opts.messages) {
      lastReport = performance.now();
      const s = (performance.now() - started) / 1000;
      const spent = Object.entries(phase).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ');
      opts.log(`seeded ${last}/${opts.messages} (${Math.round(last / s)} msg/s overall; ${spent})`);
    }
  }

  // Read a sample back through the service and the blob store, as the API will.
  for (const i of [0, Math.floor(opts.messages / 3), opts.messages - 1]) {
    const entry = await app.db.kysely.selectFrom('folder_entries').select(['message_id']).where('id', '=', entryIds[i]).executeTakeFirstOrThrow();
    const info = await app.mailboxState.getMessage(scope, entry.message_id);
    const hash = createHash('sha256');
    for await (const chunk of await app.mailboxState.openMessage(scope, entry.message_id)) hash.update(chunk as Buffer);
    if (hash.digest('hex') !== info.sha256) throw new Error(`message ${i}: blob does not match its row`);
  }
  if (app.db.dialect === 'postgres') {
    // What autovacuum's auto-analyze does shortly after a bulk load; SQLite gets no ANALYZE, as the
    // server never runs one there.
    await sql`ANALYZE`.execute(app.db.kysely);
  }
  return { tenantId: tenant.id, userId: user.id, mailboxId: mailbox.id, address, entryIds, bytes, seconds: (performance.now() - started) / 1000, kinds };
}

/** A mailbox seeded by an earlier run (kept with --keep), for measuring again without seeding. */
export async function loadSeeded(app: AppContext): Promise<Seeded> {
  const address = 'reader@bench.test';
  const mailbox = await app.db.kysely.selectFrom('mailboxes').select(['id', 'tenant_id', 'user_id']).where('address', '=', address).executeTakeFirst();
  if (!mailbox || !mailbox.user_id) throw new Error(`no seeded mailbox ${address} in this database`);
  const entries = await app.db.kysely
    .selectFrom('folder_entries')
    .select(['id', 'size'])
    .where('mailbox_id', '=', mailbox.id)
    .where('deleted_at', 'is', null)
    .orderBy('internal_date')
    .execute();
  return {
    tenantId: mailbox.tenant_id,
    userId: mailbox.user_id,
    mailboxId: mailbox.id,
    address,
    entryIds: entries.map((e) => e.id),
    bytes: entries.reduce((n, e) => n + Number(e.size), 0),
    seconds: 0,
    kinds: {},
  };
}
