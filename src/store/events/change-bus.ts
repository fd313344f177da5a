/**
 * The `ChangeBus` port: mailbox-state changes announced to every interested session (IMAP IDLE,
 * JMAP push, web UI) on this node and, in a cluster, on every other node.
 *
 * Events are small notifications, not the data itself: a receiver re-reads "changes since MODSEQ"
 * from the mailbox-state service. PostgreSQL NOTIFY payloads are limited to 8000 bytes, so events
 * never carry message content or long UID lists.
 */
// `resync` is synthetic: the bus itself emits it to every subscriber (filters ignored) when events
// may have been lost, e.g. after the PostgreSQL listener reconnected; receivers re-read state.
export type ChangeKind = 'append' | 'flags' | 'expunge' | 'folder_create' | 'folder_rename' | 'folder_delete' | 'quota' | 'resync';

export interface ChangeEvent {
  tenantId: string;
  mailboxId: string;
  folderId?: string;
  kind: ChangeKind;
  /** The folder's HIGHESTMODSEQ after the change, when it applies. */
  modseq?: number;
  /** Node that made the change (lets a node skip work it already did). */
  origin?: string;
}

export type ChangeHandler = (event: ChangeEvent) => void;

export interface ChangeBus {
  readonly kind: 'memory' | 'postgres' | 'nats';
  /** Delivered to local subscribers at once and to other nodes within about a second. */
  publish(event: ChangeEvent): Promise<void>;
  /** Returns an unsubscribe function. `mailboxId` narrows delivery to one mailbox. */
  subscribe(handler: ChangeHandler, filter?: { mailboxId?: string; tenantId?: string }): () => void;
  close(): Promise<void>;
}
