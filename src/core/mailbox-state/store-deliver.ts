/**
 * storeAndDeliver: the SMTP commit step (SPEC §3.1 step 6) for one tenant — the message row, its
 * text-index row and every folder entry in ONE transaction, over a blob the caller has already
 * stored durably. Either all of it commits or none of it (a QuotaExceededError from any target
 * rolls everything back), so a crash or a database error never leaves a row without entries
 * half-written; the blob then stays an orphan for `mairust db check` — never a row without a blob.
 *
 * The blob is shared: one message for recipients of several tenants is stored once and each
 * tenant gets its own row pointing at it (the purge job deletes a blob only when no row refers to
 * it any more).
 */
import { newId } from '../../store/db/database.js';
import { textIndexRowFromMeta, writeTextIndex } from '../search/text-index.js';
import type { Scope } from '../scope.js';
import type { Ctx } from './context.js';
import { baseDb, writeTransaction } from './db.js';
import { checkTargets, deliverWithin } from './deliver.js';
import { NotFoundError } from './errors.js';
import { publishAll } from './events.js';
import { messageRow, tenantOf } from './messages.js';
import type { StoreAndDeliverInput, StoreAndDeliverResult } from './types.js';

export async function storeAndDeliver(ctx: Ctx, scope: Scope, input: StoreAndDeliverInput): Promise<StoreAndDeliverResult> {
  const tenantId = tenantOf(scope, 'storeAndDeliver');
  const flagSets = checkTargets(input.targets);
  const id = newId();
  const row = messageRow(id, tenantId, input.blob, input.meta, {
    receivedAt: input.receivedAt,
    authResults: input.authResults,
    spamScore: input.spamScore,
    structureJson: input.structureJson,
  });
  const indexRow = textIndexRowFromMeta(id, tenantId, input.meta);
  const { results, events } = await writeTransaction(ctx.db, async (trx) => {
    const tenant = await trx.selectFrom('tenants').select('id').where('id', '=', tenantId).executeTakeFirst();
    if (!tenant) throw new NotFoundError('tenant', tenantId);
    await trx.insertInto('messages').values(row).execute();
    await writeTextIndex(baseDb(trx), ctx.db.dialect, indexRow);
    const delivered = await deliverWithin(ctx, trx, scope, id, input.targets, flagSets);
    if (input.inTransaction) await input.inTransaction(baseDb(trx), id);
    return delivered;
  });
  await publishAll(ctx, events);
  return { messageId: id, results };
}
