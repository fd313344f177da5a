/**
 * `emailauth:` — SPF, DKIM, DMARC and ARC verification of inbound mail (SPEC §3.1 step 3) and
 * what a DMARC failure does to the message.
 */
import { Type, type Static } from '@sinclair/typebox';

const reloadable = { 'x-reloadable': true } as const;

export const EmailAuthConfigSchema = Type.Object(
  {
    enabled: Type.Boolean({
      default: true,
      description: 'Verify SPF, DKIM, DMARC and ARC on inbound mail and prepend an Authentication-Results header.',
      ...reloadable,
    }),
    timeout_ms: Type.Integer({
      minimum: 100,
      maximum: 60000,
      default: 5000,
      description: 'Longest time the whole verification of one message may take; checks still waiting for DNS then report `temperror` and the message is accepted.',
      ...reloadable,
    }),
    min_rsa_key_bits: Type.Integer({
      minimum: 512,
      maximum: 8192,
      default: 1024,
      description: 'DKIM and ARC signatures made with a shorter RSA key are not trusted (result `policy`, RFC 8301 §3.2).',
      ...reloadable,
    }),
    arc: Type.Boolean({ default: true, description: 'Verify ARC sets (RFC 8617) and report `arc=` in Authentication-Results.', ...reloadable }),
    dmarc: Type.Object(
      {
        enforce_reject: Type.Boolean({
          default: true,
          description: 'Reject (550 5.7.1) mail that fails DMARC when the domain publishes p=reject (sampled by pct=). When false such mail is quarantined instead, if `quarantine` is on.',
          ...reloadable,
        }),
        quarantine: Type.Boolean({
          default: true,
          description: "File mail that fails DMARC under p=quarantine into the recipient's Junk folder.",
          ...reloadable,
        }),
      },
      { additionalProperties: false, default: {}, description: 'What a DMARC failure does (RFC 7489 §6.6.4).' },
    ),
  },
  { additionalProperties: false, default: {}, description: 'Email authentication of inbound mail.' },
);

export type EmailAuthConfig = Static<typeof EmailAuthConfigSchema>;
