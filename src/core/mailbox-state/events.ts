/**
 * Change events are published after commit, never inside a transaction: a receiver re-reads the
 * state, so it must find the change already visible. A failed publish is logged and swallowed —
 * the change itself is durable, and sessions also see it on their next poll/NOOP.
 */
import type { ChangeEvent } from '../../store/events/change-bus.js';
import type { Ctx } from './context.js';

export async function publishAll(ctx: Ctx, events: ChangeEvent[]): Promise<void> {
  for (const event of events) {
    try {
      await ctx.bus.publish(ctx.nodeId ? { ...event, origin: ctx.nodeId } : event);
    } catch (err) {
      ctx.logger?.warn({ err, event }, 'change event not published');
    }
  }
}
