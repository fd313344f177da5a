/**
 * QUOTA (RFC 9208): one quota root, "", per mailbox, with the STORAGE resource in units of 1024
 * octets (§5.1); used is rounded down like other servers do, the limit up so it is never stated
 * lower than it is. A mailbox without a limit has a root without resources (`* QUOTA "" ()`).
 * SETQUOTA is the administrator's business (REST API): refused with NOPERM.
 */
import { asAstring, expectArgs } from '../parser/args.js';
import type { CommandContext, CommandModule } from '../session/types.js';
import type { ImapValue } from '../encoder/types.js';
import { account, findFolder, mailboxArg, mailboxOut } from './_mailbox.js';

const ROOT = '';

async function quotaResponse(ctx: CommandContext): Promise<void> {
  const a = account(ctx);
  const q = await ctx.services.state.getQuota(a.scope, a.mailbox.id);
  const resources: ImapValue[] = q.limitBytes > 0 ? [{ atom: 'STORAGE' }, Math.floor(q.usedBytes / 1024), Math.ceil(q.limitBytes / 1024)] : [];
  ctx.untagged({ atom: 'QUOTA' }, ROOT, resources);
}

const quota: CommandModule = {
  names: ['GETQUOTA', 'GETQUOTAROOT', 'SETQUOTA'],
  states: ['authenticated', 'selected'],
  async handle(ctx, cmd) {
    switch (cmd.name) {
      case 'GETQUOTA': {
        expectArgs(cmd.args, 1, 1, 'GETQUOTA');
        if (asAstring(cmd.args[0], 'quota root') !== ROOT) return { status: 'NO', code: 'NONEXISTENT', text: 'No such quota root' };
        await quotaResponse(ctx);
        return { status: 'OK', text: 'GETQUOTA completed' };
      }
      case 'GETQUOTAROOT': {
        expectArgs(cmd.args, 1, 1, 'GETQUOTAROOT');
        const name = mailboxArg(ctx, cmd.args[0]);
        const folder = await findFolder(ctx, name);
        if (!folder) return { status: 'NO', code: 'NONEXISTENT', text: 'No such mailbox' };
        ctx.untagged({ atom: 'QUOTAROOT' }, mailboxOut(ctx, folder.name), ROOT);
        await quotaResponse(ctx);
        return { status: 'OK', text: 'GETQUOTAROOT completed' };
      }
      default:
        return { status: 'NO', code: 'NOPERM', text: 'Quotas are set by the administrator' };
    }
  },
};

export default quota;
