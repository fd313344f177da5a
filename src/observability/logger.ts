/**
 * The process-wide structured logger (SPEC §2 "Log format"): one JSON object per line with
 * `timestamp` (ISO 8601, UTC), `level` (a label such as "info"), `component`, `message`, and
 * `request_id`, `session_id`, `tenant_id`, `plugin_id`, `remote_addr` when the caller knows them.
 * The shape is published as a JSON Schema (log-schema.ts → docs/log-format.schema.json).
 *
 * Components log through children: `logger.child({ component: 'smtp', session_id })`.
 * `pid` and `hostname` are deliberately left out: a line's origin is added by whatever collects
 * the output (journald, the container runtime); a composition root that wants a node name in
 * cluster mode passes it in `base` (e.g. `{ node: 'mx-2' }`).
 */
import { pino, type Logger as PinoLogger, type DestinationStream, type LevelWithSilent } from 'pino';
import { REDACTED, redactPaths } from './redaction.js';
import { createTextFormatStream } from './text-format.js';

export type Logger = PinoLogger;
export type LogFormat = 'json' | 'text';

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Component name given to lines logged on a logger that has no `component` binding. */
export const DEFAULT_COMPONENT = 'main';

export interface LoggerOptions {
  level: string;
  format: LogFormat;
  /** A stream, or a file descriptor (default 1, standard output). */
  destination?: NodeJS.WritableStream | number;
  /** Bindings added to every line. Do not put `component` here: set it on children. */
  base?: Record<string, unknown>;
}

export class InvalidLogLevelError extends Error {
  readonly code = 'INVALID_LOG_LEVEL';
  constructor(level: string) {
    super(`invalid log level ${JSON.stringify(level)}: expected one of ${LOG_LEVELS.join(', ')}`);
    this.name = 'InvalidLogLevelError';
  }
}

function assertLevel(level: string): asserts level is LevelWithSilent {
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new InvalidLogLevelError(level);
}

function toDestination(dest: NodeJS.WritableStream | number | undefined, format: LogFormat): DestinationStream {
  // Synchronous writes to a file descriptor: slower than pino's async mode, but a crash never
  // loses the lines that explain it.
  const raw: NodeJS.WritableStream | DestinationStream =
    typeof dest === 'number' || dest === undefined ? pino.destination({ dest: dest ?? 1, sync: true }) : dest;
  if (format === 'text') return createTextFormatStream(raw as NodeJS.WritableStream);
  return raw as DestinationStream;
}

// Whether a logger (root or child) carries a `component` binding. Cached per instance because
// bindings() re-parses the serialised bindings on every call.
const hasComponentBinding = new WeakMap<object, boolean>();

function bindsComponent(logger: PinoLogger): boolean {
  let known = hasComponentBinding.get(logger);
  if (known === undefined) {
    known = Object.prototype.hasOwnProperty.call(logger.bindings(), 'component');
    hasComponentBinding.set(logger, known);
  }
  return known;
}

export function createLogger(opts: LoggerOptions): Logger {
  assertLevel(opts.level);
  if (opts.base && 'component' in opts.base) {
    // pino appends child bindings without de-duplicating keys, so a base component would appear
    // twice in every child's line.
    throw new Error('logger base must not contain "component": set it with logger.child({ component })');
  }
  return pino(
    {
      level: opts.level,
      messageKey: 'message',
      base: opts.base ?? null,
      timestamp: () => `,"timestamp":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: redactPaths(), censor: REDACTED },
      hooks: {
        // Guarantees the two fields every line must have (log-format.schema.json): a `message`
        // even when only an object was logged, and a `component` even on the root logger.
        logMethod(args, method) {
          const [first, ...rest] = args as unknown[];
          const isObject = typeof first === 'object' && first !== null;
          const inlineComponent = isObject && !(first instanceof Error) && 'component' in first;
          const needsComponent = !bindsComponent(this) && !inlineComponent;
          // The common case — a component logger called with a message — goes straight through.
          if (!needsComponent && !(isObject && rest.length === 0)) return method.apply(this, args);
          let obj: object;
          let tail: unknown[];
          if (first instanceof Error) {
            obj = { err: first }; // what pino itself does with a bare Error
            tail = rest.length ? rest : [first.message];
          } else if (isObject) {
            obj = first;
            tail = rest.length ? rest : [''];
          } else {
            obj = {};
            tail = [first ?? '', ...rest];
          }
          if (needsComponent) obj = { component: DEFAULT_COMPONENT, ...obj };
          return method.apply(this, [obj, ...tail] as Parameters<typeof method>);
        },
      },
    },
    toDestination(opts.destination, opts.format),
  );
}

/**
 * Changes the level at runtime (SPEC §12: the log level is hot-reloadable). Call it on the root
 * logger: children created with `child()` follow their parent's level unless they were given
 * their own.
 */
export function setLogLevel(logger: Logger, level: string): void {
  assertLevel(level);
  logger.level = level;
}
