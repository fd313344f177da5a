/**
 * IDLE (RFC 2177; RFC 9051 §6.3.13): `+ idling`, then changes are pushed as they happen until the
 * client sends DONE. In the selected state the folder view wakes on every change event
 * (SelectedMailbox.onChange) and syncs, with bursts coalesced (COALESCE_MS) so a bulk flag change
 * is one read, not hundreds; a slow forced sync covers events that were lost (e.g. a cluster
 * notification that never came). In the authenticated state there is nothing to announce; IDLE just
 * waits. The autologout timer keeps running (clients re-issue IDLE before it, RFC 2177 §3).
 */
import { expectArgs } from '../parser/args.js';
import { sessionControl } from '../session/control.js';
import { TEXT } from '../session/replies.js';
import type { CommandModule } from '../session/types.js';

const COALESCE_MS = 50;
const FALLBACK_SYNC_MS = 30_000;

const idle: CommandModule = {
  names: ['IDLE'],
  states: ['authenticated', 'selected'],
  async handle(ctx, cmd) {
    expectArgs(cmd.args, 0, 0, 'IDLE');
    const control = sessionControl(ctx);
    const view = ctx.session.selected;
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    let running: Promise<void> = Promise.resolve();

    const sync = (force: boolean) => {
      if (!view || done) return;
      running = running.then(async () => {
        if (done) return;
        try {
          await view.sync({ allowExpunge: true, force });
          if (view.gone) return control.end(TEXT.MAILBOX_GONE);
          // Nobody is going to send a command: the responses must go out now.
          control.flush();
          await control.drain();
        } catch (err) {
          ctx.log.warn({ err }, 'sync during IDLE failed');
        }
      });
    };
    // An event during the pause is covered by the sync at its end (it reads everything since the
    // last one), so one timer at a time is enough.
    const schedule = () => {
      if (timer || done) return;
      timer = setTimeout(() => {
        timer = undefined;
        sync(false);
      }, COALESCE_MS);
    };
    const unsubscribe = view?.onChange(schedule);
    const fallback = view ? setInterval(() => sync(true), FALLBACK_SYNC_MS) : undefined;
    fallback?.unref();
    // Changes that arrived since the last sync are announced at once (RFC 2177 §3 lets the server
    // send untagged responses right after the continuation).
    const line = ctx.continuation('idling');
    sync(false);
    let text: string;
    try {
      text = await line;
    } finally {
      done = true;
      clearTimeout(timer);
      clearInterval(fallback);
      unsubscribe?.();
      await running;
    }
    if (text.toUpperCase() !== 'DONE') return { status: 'BAD', text: 'Expected DONE' };
    return { status: 'OK', text: 'IDLE terminated' };
  },
};

export default idle;
