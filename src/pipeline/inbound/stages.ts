/**
 * The inbound pipeline as an explicit, ordered list of stages (ARCHITECTURE §2 "pipeline/"),
 * SPEC §3.1 steps 3–7 and §3.2 step 3:
 *
 *   data           DATA → spool, size limit, Received field
 *   header-checks  forged Authentication-Results removed; submission: From: owned
 *   outbound-policy  submission: suspended account refused; pre_send hooks (before policy);
 *                  policy engine (block / delay); pre_send hooks (after policy) — SPEC §3.2, §8
 *   email-auth     SPF/DKIM/DMARC/ARC (MX) or auth=pass (submission); DMARC reject/quarantine
 *   spam-check     rspamd or built-in rules; reject / soft reject / Junk
 *   pre_receive    hook slot (may refuse)
 *   pre_delivery   hook slot (per local mailbox: folder, flags)
 *   dkim-sign      submission: DKIM-Signature over the bytes as stored, prepended on top
 *   commit         blob once, rows per tenant, Sent copy, outbound hand-off — then, only then, 250
 *   post_receive   hook slot (asynchronous, through the queue)
 *
 * A stage either returns nothing (go on) or a rejection (stop; its reply goes to the client).
 * A stage that throws stops the pipeline too; pipeline.ts maps the error to a reply.
 */
import type { InboundPipelineDeps } from './deps.js';
import type { Rejection } from './hook-slots.js';
import type { InboundMessage } from './message-context.js';
import { commitStage } from './commit.js';
import { dataStage } from './stages/data.js';
import { emailAuthStage } from './stages/email-auth.js';
import { headerChecksStage } from './stages/header-checks.js';
import { dkimSignStage } from './stages/dkim-sign.js';
import { outboundPolicyStage } from './stages/outbound-policy.js';
import { postReceiveStage, preDeliveryStage, preReceiveStage } from './stages/hooks.js';
import { spamCheckStage } from './stages/spam-check.js';

export type { Rejection };

export interface InboundStage {
  readonly name: string;
  run(msg: InboundMessage): Promise<void | Rejection>;
}

export function inboundStages(deps: InboundPipelineDeps): InboundStage[] {
  return [
    dataStage(deps),
    headerChecksStage(deps),
    outboundPolicyStage(deps),
    emailAuthStage(deps),
    spamCheckStage(deps),
    preReceiveStage(deps),
    preDeliveryStage(deps),
    dkimSignStage(deps),
    commitStage(deps),
    postReceiveStage(),
  ];
}

/** Runs the stages in order; returns the first rejection with the stage that gave it. */
export async function runStages(stages: readonly InboundStage[], msg: InboundMessage): Promise<{ stage: string; rejection: Rejection } | null> {
  for (const stage of stages) {
    let r: void | Rejection;
    try {
      r = await stage.run(msg);
    } catch (err) {
      throw new StageError(stage.name, err);
    }
    if (r && r.ok === false) return { stage: stage.name, rejection: r };
  }
  return null;
}

/** Thrown errors carry the stage they came from, for the log line. */
export class StageError extends Error {
  constructor(readonly stage: string, cause: unknown) {
    super(`stage ${stage} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'StageError';
  }
}
