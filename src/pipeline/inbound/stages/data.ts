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
      const received = receivedHeader({
        helo: session.helo,
        remoteAddress: session.remoteAddress,
        hostname: deps.hostname,
        protocol: traceProtocol(session.secure, !!session.user),
        id: msg.queueId,
        recipient: envelope.recipients.length === 1 ? envelope.recipients[0].address : undefined,
        date: msg.receivedAt,
      });
      // RFC 5321 §4.4: the server that makes the final delivery records the reverse-path in a
      // Return-Path field. MX mail is delivered here; a submission is relayed onward (its stored
      // copy is also what goes out), so it gets none.
      msg.prepend.received = (session.listener === 'mx' ? returnPathField(envelope.mailFrom) : '') + received;
    },
  };
}

/** `Return-Path: <reverse-path>` (RFC 5322 §3.6.7); `<>` for the null sender. CR/LF cannot occur: the SMTP parser refuses them in MAIL FROM. */
export function returnPathField(mailFrom: string | null): string {
  return `Return-Path: <${mailFrom ?? ''}>\r\n`;
}
