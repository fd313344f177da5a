/**
 * The JSON a plugin receives and answers (SPEC §6 "Payload to plugin", "Response / callback";
 * SPEC §7 permissions). Field names are the wire names (snake_case) on purpose: these types
 * describe the JSON exactly, so `JSON.parse(body) as HookPayload` needs no mapping.
 */

/** The four hook points of the mail pipelines (SPEC §6 table). */
export type HookType = 'pre_receive' | 'post_receive' | 'pre_send' | 'pre_delivery';

/** What a plugin decides; aggregation precedence: reject > tempfail > quarantine > tag > allow. */
export type HookAction = 'allow' | 'reject' | 'tempfail' | 'tag' | 'quarantine';

/** SMTP envelope (RFC 5321 MAIL FROM / RCPT TO); `from` is '' for the null reverse-path `<>`. */
export interface HookEnvelope {
  from: string;
  to: string[];
}

/** One attachment, as far as `read_attachments` grants (`metadata` | `preview` | `full`). */
export interface HookAttachment {
  filename: string | null;
  content_type: string;
  /** Decoded size in bytes. */
  size: number;
  /**
   * With `read_attachments = preview`: base64 of the first 4 KiB of the decoded bytes; with
   * `full`: base64 of all of them. Attachments are bytes, not text, hence base64.
   */
  content_base64?: string;
  /** Present with `content_base64`: true when it holds only a prefix (preview of a larger file). */
  truncated?: boolean;
}

/** The message body as far as `read_body` grants: nothing, a preview, or the full text. */
export interface HookBody {
  /** With `read_body = preview`: the first 4 KiB, cut on a character boundary. */
  preview?: string;
  /** With `read_body = full`: the whole text. */
  full?: string;
  /** Size of the message in bytes (always present). */
  size: number;
  has_attachments: boolean;
  /** Present unless `read_attachments = none`. */
  attachments?: HookAttachment[];
}

/** The JSON body of a hook call (MaiRust → plugin). */
export interface HookPayload {
  hook_type: HookType;
  message_id: string;
  /** null only for hooks that run before a tenant is known. */
  tenant_id: string | null;
  /** The Mailbox address concerned; null where the hook runs before one is known (several recipients). */
  mailbox: string | null;
  envelope: HookEnvelope;
  /** Only with the `read_headers` permission: field name (lower case) → values in message order. */
  headers?: Record<string, string[]>;
  body: HookBody;
  /**
   * Where a plugin posts a later answer (`post_receive`), see `createCallbackClient` and
   * `baseUrlFromCallbackUrl`; null when MaiRust has no callback API to offer for this call.
   */
  callback_url: string | null;
  metadata: {
    /** RFC 3339 time of receipt. */
    received_at: string;
    /** The SMTP client's address; null for mail that did not arrive over SMTP. */
    client_ip: string | null;
    [key: string]: unknown;
  };
}

/**
 * A plugin's answer, as the body of the synchronous HTTP response or of a callback. Writes need
 * their permission (`write_tags`, `write_flags`, `move_message`, `write_metadata`); an ungranted
 * write is refused (callback: 403) or ignored and logged (synchronous response).
 */
export interface HookResponse {
  plugin_id: string;
  action: HookAction;
  tags?: string[];
  score?: number;
  /** Stored under the plugin's namespace (`plugin:<id>:`). */
  metadata?: Record<string, unknown>;
  /** With `quarantine` or `move_message`: the destination folder. */
  folder?: string;
  /** IMAP flags/keywords to set (RFC 9051 §2.3.2), e.g. `\\Flagged` or `$Phishing`. */
  flags?: string[];
  /** Custom reply for reject (5xx) / tempfail (4xx); must match the action's class. */
  smtp_code?: number;
  /** RFC 3463 enhanced status code of the same class, e.g. `5.7.1`. */
  smtp_enhanced?: string;
  /** Reply text: one line, no CR/LF. */
  smtp_message?: string;
}

/** What `GET /internal/plugins/messages/:id` returns: the payload's view of one message. */
export type PluginMessage = Omit<HookPayload, 'hook_type' | 'callback_url'> & { [key: string]: unknown };
