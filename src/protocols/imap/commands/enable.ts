/**
 * ENABLE (RFC 5161; RFC 9051 §6.3.1): CONDSTORE, QRESYNC (which implies CONDSTORE, RFC 7162
 * §3.2.3), IMAP4rev2 and UTF8=ACCEPT (RFC 6855 §3). The `* ENABLED` response lists what this
 * command newly enabled; unknown or already enabled names are ignored (RFC 5161 §3.1). Valid in the
 * authenticated state only (RFC 5161 §3.1): what a selected folder's view has announced must not
 * change meaning underneath it.
 */
import { asAtom } from '../parser/args.js';
import { ImapSyntaxError, type CommandModule, type Enableable } from '../session/types.js';

const KNOWN: Record<string, Enableable> = {
  CONDSTORE: 'CONDSTORE',
  QRESYNC: 'QRESYNC',
  IMAP4REV2: 'IMAP4REV2',
  'UTF8=ACCEPT': 'UTF8=ACCEPT',
};

const enable: CommandModule = {
  names: ['ENABLE'],
  states: ['authenticated'],
  async handle(ctx, cmd) {
    if (cmd.args.length === 0) throw new ImapSyntaxError('Missing capability to ENABLE');
    const enabled = ctx.session.enabled;
    const now: string[] = [];
    for (const token of cmd.args) {
      const name = asAtom(token, 'capability name').toUpperCase();
      const ext = KNOWN[name];
      if (!ext || enabled.has(ext)) continue;
      enabled.add(ext);
      if (ext === 'QRESYNC') enabled.add('CONDSTORE');
      // The response spells IMAP4rev2 as the capability list does.
      now.push(ext === 'IMAP4REV2' ? 'IMAP4rev2' : ext);
    }
    ctx.untagged({ atom: 'ENABLED' }, ...now.map((n) => ({ atom: n })));
    return { status: 'OK', text: 'ENABLE completed' };
  },
};

export default enable;
