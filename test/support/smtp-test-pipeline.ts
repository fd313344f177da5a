/**
 * A small real implementation of the InboundPipeline contract for the SMTP protocol tests, so they do
 * not depend on the production pipeline (src/pipeline/inbound/, written separately): it accepts
 * recipients at one domain, keeps received messages in memory, and can be told to answer a given
 * verdict or to hold a message until released.
 */
import type { Readable } from 'node:stream';
import type { AcceptedRecipient, Envelope, InboundPipeline, SmtpSessionInfo, Verdict } from '../../src/pipeline/inbound/contract.js';
import { REPLIES } from '../../src/protocols/smtp/replies.js';

export interface ReceivedMessage {
  session: SmtpSessionInfo;
  envelope: Envelope;
  data: Buffer;
  messageId: string;
}

export interface TestPipelineOptions {
  /** Recipients at this domain are local (case-insensitive). */
  domain: string;
  /** Local parts (before any +tag) that exist; unset = every local part exists. */
  users?: string[];
  /** Stop reading a message past this many bytes (a guard for the tests themselves). */
  maxBytes?: number;
}

export class SmtpTestPipeline implements InboundPipeline {
  readonly received: ReceivedMessage[] = [];
  /** Verdicts answered instead of the rules until changed back to undefined. */
  readonly force: { sender?: Verdict; recipient?: Verdict; receive?: Verdict } = {};
  /** Every RCPT address the pipeline was asked about, in order. */
  readonly recipientChecks: string[] = [];
  /** Messages whose receive was aborted (stream destroyed), with the error. */
  readonly aborted: Error[] = [];
  private gate: Promise<void> | null = null;
  private waiters: (() => void)[] = [];
  private counter = 0;

  constructor(private readonly opts: TestPipelineOptions) {}

  /** Holds every receive after the message was read, until the returned function is called. */
  hold(): () => void {
    let open!: () => void;
    this.gate = new Promise<void>((resolve) => (open = resolve));
    return () => {
      this.gate = null;
      open();
    };
  }

  async checkSender(_session: SmtpSessionInfo, _mailFrom: string | null): Promise<Verdict> {
    return this.force.sender ?? { ok: true };
  }

  async checkRecipient(session: SmtpSessionInfo, _envelope: Envelope, address: string): Promise<Verdict & { recipient?: AcceptedRecipient }> {
    this.recipientChecks.push(address);
    if (this.force.recipient) return this.force.recipient;
    const at = address.lastIndexOf('@');
    const local = at > 0 ? address.slice(0, at) : address;
    const domain = at > 0 ? address.slice(at + 1).toLowerCase() : '';
    if (domain === this.opts.domain.toLowerCase()) {
      const [user, subaddress] = local.split('+', 2);
      if (this.opts.users && !this.opts.users.includes(user.toLowerCase())) return { ok: false, reply: REPLIES.RCPT_UNKNOWN_USER };
      return { ok: true, recipient: { address, tenantId: 'tenant-1', mailboxIds: [`mailbox-${user.toLowerCase()}`], subaddress } };
    }
    // Remote recipients only for an authenticated submission; otherwise we would be an open relay.
    if (session.user) return { ok: true, recipient: { address } };
    return { ok: false, reply: REPLIES.RELAY_DENIED };
  }

  async receive(session: SmtpSessionInfo, envelope: Envelope, data: Readable): Promise<Verdict & { messageId?: string }> {
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of data) {
        size += (chunk as Buffer).length;
        if (size > (this.opts.maxBytes ?? 64 * 1024 * 1024)) throw new Error('test pipeline: message too large');
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      this.aborted.push(err as Error);
      throw err;
    }
    if (this.gate) await this.gate;
    if (this.force.receive) return this.force.receive;
    const messageId = `msg-${++this.counter}`;
    this.received.push({ session: { ...session }, envelope, data: Buffer.concat(chunks), messageId });
    this.waiters.splice(0).forEach((w) => w());
    return { ok: true, messageId };
  }

  /** Resolves once `count` messages were received (fails after `timeoutMs`). */
  async waitForMessages(count: number, timeoutMs = 10_000): Promise<ReceivedMessage[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} messages, got ${this.received.length}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.received;
  }
}
