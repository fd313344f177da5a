/**
 * Config section `inbound`: the inbound mail pipeline (SPEC §3.1, §3.2) — what happens between the
 * end of DATA and the `250`: spooling, filing rules for spam and DMARC results, and the limits that
 * the pipeline enforces itself (the SMTP layer enforces them too; both layers check, by design).
 *
 * The message size limit is not repeated here: the pipeline takes `mail.max_message_bytes`.
 */
import { Type, type Static } from '@sinclair/typebox';

const reloadable = { 'x-reloadable': true } as const;

export const InboundConfigSchema = Type.Object(
  {
    spool_memory_bytes: Type.Integer({
      minimum: 0,
      maximum: 16777216,
      default: 262144,
      description: 'Messages up to this size are spooled in memory while they are checked; larger ones go to a temp file under `<data_dir>/spool` (removed after every outcome).',
    }),
    max_header_bytes: Type.Integer({
      minimum: 8192,
      maximum: 16777216,
      default: 1048576,
      description: 'Largest header section the pipeline reads (to remove forged Authentication-Results and check From:); a larger one is refused with 552 5.3.4.',
      ...reloadable,
    }),
    spam_check_submission: Type.Boolean({
      default: false,
      description: 'Also run the spam check on mail submitted by authenticated users (587/465).',
      ...reloadable,
    }),
    spam_to_junk: Type.Boolean({
      default: true,
      description: 'File messages the spam check marks as spam (action `add header` / `rewrite subject`) into the recipient\'s Junk folder; otherwise INBOX, with the X-Spam fields.',
      ...reloadable,
    }),
  },
  { additionalProperties: false, default: {}, description: 'Inbound mail pipeline (end of DATA to durable delivery).' },
);

export type InboundConfig = Static<typeof InboundConfigSchema>;

/** The section with every default applied (for tests and for callers without a config file). */
export const DEFAULT_INBOUND_CONFIG: InboundConfig = Object.freeze({
  spool_memory_bytes: 262144,
  max_header_bytes: 1048576,
  spam_check_submission: false,
  spam_to_junk: true,
});
