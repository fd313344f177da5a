/**
 * In-process `ChangeBus` (embedded shape), plus the local fan-out and event validation that the
 * PostgreSQL adapter reuses, so both adapters deliver and refuse events in exactly the same way.
 *
 * Delivery is always asynchronous (one microtask per publish): a publisher — typically the
 * mailbox-state service right after a commit — never runs subscriber code on its own stack, so a
 * slow or throwing IMAP session cannot break or delay the write path. A throwing subscriber is
 * logged and the remaining subscribers still receive the event.
 */
import type { ChangeBus, ChangeEvent, ChangeHandler, ChangeKind } from './change-bus.js';

/** The few logger methods the bus uses; a pino logger fits. */
export interface BusLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface ChangeFilter {
  mailboxId?: string;
  tenantId?: string;
}

/**
 * Serialized event size limit. PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; the
 * envelope around the event (node id, sequence id) needs some room, so events themselves stay
 * below this. Enforced by every adapter so code that works embedded also works in a cluster.
 */
export const MAX_CHANGE_EVENT_BYTES = 7000;

/** Default bound on subscribers per node (each IMAP IDLE / push session holds one). */
export const DEFAULT_MAX_SUBSCRIBERS = 100_000;

const KINDS: ReadonlySet<ChangeKind> = new Set<ChangeKind>([
  'append', 'flags', 'expunge', 'folder_create', 'folder_rename', 'folder_delete', 'quota', 'resync',
]);

export class ChangeEventTooLargeError extends Error {
  readonly code = 'CHANGE_EVENT_TOO_LARGE';
  constructor(readonly bytes: number, readonly limit: number) {
    super(
      `change event is ${bytes} bytes, the limit is ${limit} (PostgreSQL NOTIFY payloads must stay below 8000 bytes): ` +
        'events are notifications, send ids and a MODSEQ, never message content or UID lists',
    );
    this.name = 'ChangeEventTooLargeError';
  }
}

export class InvalidChangeEventError extends Error {
  readonly code = 'CHANGE_EVENT_INVALID';
  constructor(reason: string) {
    super(`invalid change event: ${reason}`);
    this.name = 'InvalidChangeEventError';
  }
}

export class ChangeBusClosedError extends Error {
  readonly code = 'CHANGE_BUS_CLOSED';
  constructor() {
    super('change bus is closed');
    this.name = 'ChangeBusClosedError';
  }
}

/** Throws when the event is malformed or too large; returns its JSON size in bytes. */
export function validateChangeEvent(event: ChangeEvent): number {
  if (!event || typeof event !== 'object') throw new InvalidChangeEventError('not an object');
  if (!KINDS.has(event.kind)) throw new InvalidChangeEventError(`unknown kind ${JSON.stringify(event.kind)}`);
  if (typeof event.tenantId !== 'string' || event.tenantId === '') throw new InvalidChangeEventError('tenantId is required');
  if (typeof event.mailboxId !== 'string' || event.mailboxId === '') throw new InvalidChangeEventError('mailboxId is required');
  if (event.folderId !== undefined && typeof event.folderId !== 'string') throw new InvalidChangeEventError('folderId must be a string');
  if (event.modseq !== undefined && !Number.isSafeInteger(event.modseq)) throw new InvalidChangeEventError('modseq must be an integer');
  const bytes = Buffer.byteLength(JSON.stringify(event), 'utf8');
  if (bytes > MAX_CHANGE_EVENT_BYTES) throw new ChangeEventTooLargeError(bytes, MAX_CHANGE_EVENT_BYTES);
  return bytes;
}

/** The synthetic "you may have missed events, re-read state" notification. */
export function resyncEvent(origin?: string): ChangeEvent {
  return { kind: 'resync', tenantId: '*', mailboxId: '*', ...(origin ? { origin } : {}) };
}

interface Subscriber {
  handler: ChangeHandler;
  filter: ChangeFilter;
  active: boolean;
}

function matches(sub: Subscriber, event: ChangeEvent): boolean {
  // A resync concerns every mailbox, so it bypasses filters.
  if (event.kind === 'resync') return true;
  if (sub.filter.mailboxId !== undefined && sub.filter.mailboxId !== event.mailboxId) return false;
  if (sub.filter.tenantId !== undefined && sub.filter.tenantId !== event.tenantId) return false;
  return true;
}

/** The subscribers of one node and asynchronous, isolated delivery to them. */
export class LocalSubscribers {
  private readonly subs = new Set<Subscriber>();

  constructor(
    private readonly logger?: BusLogger,
    private readonly maxSubscribers = DEFAULT_MAX_SUBSCRIBERS,
  ) {}

  get size(): number {
    return this.subs.size;
  }

  add(handler: ChangeHandler, filter: ChangeFilter = {}): () => void {
    if (typeof handler !== 'function') throw new TypeError('change bus: handler must be a function');
    if (this.subs.size >= this.maxSubscribers) {
      throw new Error(`change bus: too many subscribers on this node (limit ${this.maxSubscribers})`);
    }
    const sub: Subscriber = { handler, filter: { ...filter }, active: true };
    this.subs.add(sub);
    return () => {
      sub.active = false;
      this.subs.delete(sub);
    };
  }

  /** Queues delivery of `event` to the matching subscribers; never calls a handler synchronously. */
  deliver(event: ChangeEvent): void {
    const frozen = Object.freeze({ ...event });
    const targets = [...this.subs].filter((s) => matches(s, frozen));
    if (targets.length === 0) return;
    queueMicrotask(() => {
      for (const sub of targets) {
        // Unsubscribed between publish and delivery: the caller asked for no more calls.
        if (!sub.active) continue;
        try {
          sub.handler(frozen);
        } catch (err) {
          this.reportHandlerError(err, frozen);
        }
      }
    });
  }

  clear(): void {
    for (const s of this.subs) s.active = false;
    this.subs.clear();
  }

  private reportHandlerError(err: unknown, event: ChangeEvent): void {
    if (this.logger) {
      this.logger.error({ component: 'change-bus', err, kind: event.kind, mailbox_id: event.mailboxId }, 'change subscriber threw');
    } else {
      process.emitWarning(`change bus subscriber threw: ${(err as Error)?.message ?? String(err)}`);
    }
  }
}

export interface MemoryChangeBusOptions {
  /** Stamped as `origin` on events published without one. */
  nodeId?: string;
  logger?: BusLogger;
  maxSubscribers?: number;
}

/** Single-process bus: the embedded shape, and tests. */
export class MemoryChangeBus implements ChangeBus {
  readonly kind = 'memory' as const;
  private readonly subscribers: LocalSubscribers;
  private closed = false;

  constructor(private readonly opts: MemoryChangeBusOptions = {}) {
    this.subscribers = new LocalSubscribers(opts.logger, opts.maxSubscribers);
  }

  async publish(event: ChangeEvent): Promise<void> {
    if (this.closed) throw new ChangeBusClosedError();
    validateChangeEvent(event);
    this.subscribers.deliver(event.origin || !this.opts.nodeId ? event : { ...event, origin: this.opts.nodeId });
  }

  subscribe(handler: ChangeHandler, filter?: ChangeFilter): () => void {
    if (this.closed) throw new ChangeBusClosedError();
    return this.subscribers.add(handler, filter);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.subscribers.clear();
  }
}
