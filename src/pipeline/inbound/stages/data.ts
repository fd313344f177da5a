/**
 * Stage `data` (SPEC §3.1 step 3): reads the DATA stream into the spool, enforcing the size limit
 * while the bytes arrive (RFC 1870 §6: 552 5.3.4; the SMTP layer limits too — both check), and
 * writes our Received trace field (RFC 5321 §4.4).
 */
import { REPLIES } from '../../../protocols/smtp/replies.js';
import { current, DEFAULT_MAX_MESSAGE_BYTES, type InboundPipelineDeps } from '../deps.js';
import type { InboundStage } from '../stages.js';
import { receivedHeader, traceProtocol } from '../received-header.js';
import { MessageTooLargeError, spoolStream } from '../spool.js';

export function dataStage(deps: InboundPipelineDeps): InboundStage {
  return {
    name: 'data',
    async run(msg) {
      const maxBytes = current(deps.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES);
      try {
        msg.source = await spoolStream(msg.data, { dir: deps.spoolDir, memoryThreshold: current(deps.config).spool_memory_bytes, maxBytes });
      } catch (err) {
        if (err instanceof MessageTooLargeError) return { ok: false, reply: REPLIES.MESSAGE_TOO_BIG };
        throw err;
      }
      const { session, envelope } = msg;
      msg.prepend.received = receivedHeader({
        helo: session.helo,
        remoteAddress: session.remoteAddress,
        hostname: deps.hostname,
        protocol: traceProtocol(session.secure, !!session.user),
        id: msg.queueId,
        recipient: envelope.recipients.length === 1 ? envelope.recipients[0].address : undefined,
        date: msg.receivedAt,
      });
    },
  };
}
