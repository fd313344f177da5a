/**
 * What a few commands need from the session beyond the CommandContext contract (types.ts): the
 * transport changes of STARTTLS and COMPRESS, which happen after their tagged OK has been sent
 * (RFC 9051 §6.2.1, RFC 4978 §3), the per-user session limit at login, and an explicit flush for
 * IDLE, which sends responses while the client is not sending commands. Kept out of the contract
 * so command modules of the selected state do not depend on transport details.
 */
import type { Mailbox } from '../../../core/tenancy/types.js';
import type { LoginInfo, MailUser } from '../services.js';
import type { CommandContext } from './types.js';

export interface SessionControl {
  /** A clear connection on the STARTTLS listener with a certificate to offer. */
  readonly startTlsAvailable: boolean;
  readonly compressed: boolean;
  /** For audit entries and lockout keys. */
  readonly loginInfo: LoginInfo;
  /** Runs `fn` once the current command's tagged response has been written out. */
  afterResponse(fn: () => void): void;
  /** Starts the TLS handshake; input pipelined behind STARTTLS is discarded (RFC 9051 §6.2.1). */
  startTls(): void;
  /** From now on both directions are raw DEFLATE (RFC 4978 §4). */
  startCompression(): void;
  /**
   * Makes the session authenticated as `user` with its own mailbox; false when the user already
   * has the maximum of sessions on this node (the caller answers NO [LIMIT]).
   */
  login(user: MailUser, mailbox: Mailbox): boolean;
  /** Ends the session with `* BYE text` (RFC 9051 §7.1.5), e.g. when the selected folder is gone. */
  end(text: string): void;
  /** Sends queued responses now (IDLE). */
  flush(): void;
  /** Resolves when queued output is below the high-water mark (large responses, IDLE bursts). */
  drain(): Promise<void>;
}

export const SESSION_CONTROL = Symbol('imap.session.control');

export function sessionControl(ctx: CommandContext): SessionControl {
  const control = (ctx as CommandContext & { [SESSION_CONTROL]?: SessionControl })[SESSION_CONTROL];
  if (!control) throw new Error('this command needs a real IMAP session');
  return control;
}
