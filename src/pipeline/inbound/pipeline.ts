/**
 * InboundPipelineImpl: the InboundPipeline contract (contract.ts) over the stage list (stages.ts).
 *
 * Error policy (SPEC §4 "Failure behaviour"): anything unexpected — database or blob store down, a
 * defect — answers 451 4.3.0 so the client retries; mail is never acknowledged on a guess. The
 * verdict of `receive` is resolved only after the commit stage has made the message durable.
 *
 * One log line per message (component `pipeline`): session, queue id, tenants, message ids, size,
 * recipients, spam score, disposition, outcome, duration.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { QuotaExceededError } from '../../core/mailbox-state/errors.js';
import { REPLIES, formatReply, type SmtpReply } from '../../protocols/smtp/replies.js';
import type { AcceptedRecipient, Envelope, InboundPipeline, SmtpSessionInfo, Verdict } from './contract.js';
import { current, DEFAULT_MAX_MESSAGE_BYTES, type InboundPipelineDeps } from './deps.js';
import { newInboundMessage, type InboundMessage } from './message-context.js';
import { checkRecipient } from './recipients.js';
import { checkSender } from './sender.js';
import { MessageTooLargeError } from './spool.js';
import { createPipelineMetrics, type PipelineMetrics } from './pipeline-metrics.js';
import { inboundStages, runStages, StageError, type InboundStage } from './stages.js';

/** 16 hex digits: unique enough to follow one message through the logs and the Received field. */
function newQueueId(): string {
  return randomBytes(8).toString('hex');
}

function outcomeOf(reply: SmtpReply): 'accepted' | 'rejected' | 'tempfail' {
  if (reply.code < 400) return 'accepted';
  return reply.code < 500 ? 'tempfail' : 'rejected';
}

export class InboundPipelineImpl implements InboundPipeline {
  private readonly stages: readonly InboundStage[];
  private readonly metrics: PipelineMetrics | null;

  private readonly deps: InboundPipelineDeps;

  constructor(deps: InboundPipelineDeps) {
    // Every line says component=pipeline; a logger already bound to it is not bound twice (pino
    // would print the key twice).
    const logger = deps.logger.bindings().component === undefined ? deps.logger.child({ component: 'pipeline' }) : deps.logger;
    this.deps = { ...deps, logger };
    this.stages = inboundStages(this.deps);
    this.metrics = deps.metrics ? createPipelineMetrics(deps.metrics.registry) : null;
  }

  /** The stage names in order (for docs, diagnostics and tests). */
  stageNames(): string[] {
    return this.stages.map((s) => s.name);
  }

  async checkSender(session: SmtpSessionInfo, mailFrom: string | null, declaredSize?: number): Promise<Verdict> {
    try {
      const maxMessageBytes = current(this.deps.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES);
      return await checkSender({ tenancy: this.deps.tenancy, maxMessageBytes }, session, mailFrom, declaredSize);
    } catch (err) {
      return this.unexpected(session, 'MAIL FROM', err);
    }
  }

  async checkRecipient(session: SmtpSessionInfo, envelope: Envelope, address: string): Promise<Verdict & { recipient?: AcceptedRecipient }> {
    try {
      return await checkRecipient(this.deps, session, envelope, address);
    } catch (err) {
      if (err instanceof QuotaExceededError) return { ok: false, reply: REPLIES.MAILBOX_FULL };
      return this.unexpected(session, 'RCPT TO', err);
    }
  }

  async receive(session: SmtpSessionInfo, envelope: Envelope, data: Readable): Promise<Verdict & { messageId?: string }> {
    const started = performance.now();
    const msg = newInboundMessage(session, envelope, data, newQueueId());
    let verdict: Verdict;
    let stage: string | null = null;
    try {
      const stop = await runStages(this.stages, msg);
      if (stop) {
        stage = stop.stage;
        verdict = stop.rejection;
      } else {
        verdict = { ok: true, reply: REPLIES.MESSAGE_ACCEPTED };
      }
    } catch (err) {
      stage = err instanceof StageError ? err.stage : null;
      verdict = { ok: false, reply: this.replyForError(msg, err) };
    } finally {
      // Whatever happened, the DATA stream is consumed (the contract) and the spool removed.
      if (!data.readableEnded && !data.destroyed) data.resume();
      await msg.source?.dispose().catch((err) => this.deps.logger.warn({ queue_id: msg.queueId, err }, 'spool file not removed'));
    }
    this.logMessage(msg, verdict, stage, performance.now() - started);
    const messageId = msg.committed?.messageIds[0];
    return messageId && verdict.ok ? { ...verdict, messageId } : verdict;
  }

  private replyForError(msg: InboundMessage, err: unknown): SmtpReply {
    const cause = err instanceof StageError ? err.cause : err;
    if (cause instanceof MessageTooLargeError) return REPLIES.MESSAGE_TOO_BIG;
    if (cause instanceof QuotaExceededError) return REPLIES.MAILBOX_FULL;
    this.deps.logger.error(
      { session_id: msg.session.id, queue_id: msg.queueId, stage: err instanceof StageError ? err.stage : undefined, err: cause },
      'message not accepted: local error',
    );
    return REPLIES.TEMP_LOCAL_ERROR;
  }

  private unexpected(session: SmtpSessionInfo, command: string, err: unknown): Verdict {
    this.deps.logger.error({ session_id: session.id, remote_addr: session.remoteAddress, command, err }, `${command} not answered: local error`);
    return { ok: false, reply: REPLIES.TEMP_LOCAL_ERROR };
  }

  private logMessage(msg: InboundMessage, verdict: Verdict, stage: string | null, ms: number): void {
    const reply = verdict.reply ?? REPLIES.MESSAGE_ACCEPTED;
    const result = verdict.ok ? 'accepted' : outcomeOf(reply);
    const c = msg.committed;
    this.deps.logger.info(
      {
        session_id: msg.session.id,
        remote_addr: msg.session.remoteAddress,
        listener: msg.session.listener,
        queue_id: msg.queueId,
        tenant_id: c?.tenantIds.length === 1 ? c.tenantIds[0] : undefined,
        tenant_ids: c?.tenantIds,
        message_ids: c?.messageIds,
        size: c?.storedSize ?? msg.source?.size,
        recipients: msg.envelope.recipients.length,
        delivered: c?.delivered,
        over_quota: c?.overQuota || undefined,
        outbound_job_id: c?.outboundJobId ?? undefined,
        spam_score: msg.spam?.score,
        spam_action: msg.spam?.action,
        disposition: msg.junk ? 'junk' : msg.disposition,
        result,
        reply: formatReply(reply),
        stage: stage ?? undefined,
        ms: Math.round(ms),
      },
      `message ${result}`,
    );
    if (this.metrics) {
      const listener = msg.session.listener;
      this.metrics.messages.inc({ listener, result, stage: stage ?? (verdict.ok ? 'commit' : 'unknown') });
      if (verdict.ok && msg.junk) this.metrics.junk.inc({ listener, reason: msg.disposition === 'quarantine' ? 'dmarc' : 'spam' });
      this.metrics.duration.observe({ listener }, ms / 1000);
    }
  }
}
