/**
 * Default IMAP limits and their derivation from config (`imap` section, `mail.max_message_bytes`).
 * The defaults mirror the config defaults (src/config/sections/imap.ts) so that a listener built
 * without config (tests) behaves like a fresh install.
 */
import type { ImapConfig } from '../../../config/sections/imap.js';
import type { ImapLimits } from './types.js';

export const DEFAULT_IMAP_LIMITS: Readonly<ImapLimits> = Object.freeze({
  maxLineBytes: 65536,
  maxLiteralBytes: 65536,
  maxAppendBytes: 25 * 1024 * 1024,
  maxCommandBytes: 1_048_576,
  maxBadCommands: 20,
  idleTimeoutMs: 30 * 60_000,
  preAuthTimeoutMs: 60_000,
});

export function imapLimitsFromConfig(imap: ImapConfig, maxMessageBytes: number): ImapLimits {
  return {
    maxLineBytes: imap.max_line_bytes,
    maxLiteralBytes: imap.max_literal_bytes,
    maxAppendBytes: maxMessageBytes,
    maxCommandBytes: imap.max_command_bytes,
    maxBadCommands: imap.max_bad_commands,
    idleTimeoutMs: imap.idle_timeout_minutes * 60_000,
    preAuthTimeoutMs: imap.preauth_timeout_seconds * 1000,
  };
}
