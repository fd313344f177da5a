/** Stages `pre_receive` and `pre_delivery`: the hook slots of hook-slots.ts in the stage list. */
import type { InboundPipelineDeps } from '../deps.js';
import { runPreDelivery, runPreReceive } from '../hook-slots.js';
import type { InboundStage } from '../stages.js';

export function preReceiveStage(deps: InboundPipelineDeps): InboundStage {
  return { name: 'pre_receive', run: (msg) => runPreReceive(deps.hooks?.preReceive ?? [], msg) };
}

export function preDeliveryStage(deps: InboundPipelineDeps): InboundStage {
  return { name: 'pre_delivery', run: (msg) => runPreDelivery(deps.hooks?.preDelivery ?? [], msg) };
}

/**
 * Stage `post_receive` (SPEC §3.1 step 7): nothing to do yet. When hooks exist, their jobs are
 * enqueued inside the commit transaction (see hook-slots.ts), and this stage only wakes the
 * workers after the commit.
 */
export function postReceiveStage(): InboundStage {
  return { name: 'post_receive', run: async () => {} };
}
