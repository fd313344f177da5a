/**
 * `mairust queue …` — inspect and manage queued jobs (SPEC §3.3: "Queue is inspectable and
 * manageable: list, show, retry now, delete").
 */
import type { Command } from 'commander';
import type { Job } from '../queue/queue.js';
import type { JobStatus } from '../store/db/types.js';
import { MAX_LIST_LIMIT } from '../queue/db-queue.js';
import type { CliContext } from './cli-context.js';
import type { AppContext } from '../app/context.js';
import { systemScope } from '../core/scope.js';
import { cliActor } from '../security/audit.js';
import { MAX_LIST, type OutboundRecord, type OutboundRecords } from '../outbound/records.js';
import { outboundRecords } from '../app/outbound.js';
import type { OutboundStatus } from '../store/db/types.js';

const STATUSES: readonly JobStatus[] = ['ready', 'running', 'done', 'dead'];
/** Table cells stay on one line; `queue show` prints the full error. */
const ERROR_PREVIEW_CHARS = 60;

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** One row of `queue list`: what an operator scans for, without the payload. */
function summary(job: Job) {
  const err = job.lastError;
  return {
    id: job.id,
    queue: job.queue,
    status: job.status,
    attempts: `${job.attempts}/${job.maxAttempts}`,
    run_at: iso(job.runAt),
    locked_by: job.lockedBy,
    last_error: err && err.length > ERROR_PREVIEW_CHARS ? `${err.slice(0, ERROR_PREVIEW_CHARS - 1)}…` : err,
  };
}

function detail(job: Job) {
  return {
    id: job.id,
    queue: job.queue,
    status: job.status,
    attempts: job.attempts,
    max_attempts: job.maxAttempts,
    run_at: iso(job.runAt),
    locked_by: job.lockedBy,
    last_error: job.lastError,
    created_at: iso(job.createdAt),
    updated_at: iso(job.updatedAt),
    finished_at: iso(job.finishedAt),
    payload: job.payload,
  };
}

function outboundSummary(r: OutboundRecord) {
  return {
    id: r.id,
    tenant_id: r.tenantId,
    status: r.held ? `${r.status} (held)` : r.status,
    from: r.mailFrom || '<>',
    recipients: Object.entries(r.counts).map(([k, v]) => `${k}:${v}`).join(' '),
    attempts: r.attempts,
    next_attempt_at: iso(r.nextAttemptAt),
    created_at: iso(r.createdAt),
  };
}

const OUTBOUND_STATUSES: readonly OutboundStatus[] = ['queued', 'delivering', 'delivered', 'bounced', 'partial', 'deleted'];

/** `mairust queue outbound …` (SPEC §3.3: list, show, retry now, delete/bounce, hold/release, stats). */
function registerOutbound(queue: Command, cli: CliContext): void {
  const outbound = queue.command('outbound').description('the outbound mail queue (delivery to remote servers)');
  const withRecords = async (fn: (records: OutboundRecords) => Promise<void>) => {
    const app = await cli.open();
    try {
      // The system scope: the CLI is the operator; DSNs for `delete --bounce`.
      await fn(outboundRecords(app, app.logger));
    } catch (err) {
      cli.fail((err as Error).message, 1);
    } finally {
      await app.close();
    }
  };

  outbound
    .command('list')
    .description('list outbound entries, newest first')
    .option('--status <status>', `only entries in this status (${OUTBOUND_STATUSES.join(', ')})`)
    .option('--domain <domain>', 'only entries with a recipient at this domain')
    .option('--tenant <id>', "only this tenant's entries")
    .option('--limit <n>', `entries, 1–${MAX_LIST}`, '50')
    .action(async (opts: { status?: string; domain?: string; tenant?: string; limit: string }) => {
      if (opts.status !== undefined && !OUTBOUND_STATUSES.includes(opts.status as OutboundStatus)) {
        cli.fail(`--status must be one of ${OUTBOUND_STATUSES.join(', ')} (got ${opts.status})`, 2);
        return;
      }
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST) {
        cli.fail(`--limit must be an integer from 1 to ${MAX_LIST} (got ${opts.limit})`, 2);
        return;
      }
      await withRecords(async (r) => {
        const rows = await r.list(systemScope, { status: opts.status as OutboundStatus | undefined, domain: opts.domain, tenantId: opts.tenant, limit });
        cli.print(cli.globals().json ? rows : rows.map(outboundSummary));
      });
    });

  outbound
    .command('show')
    .description('show an entry with its recipients, attempts (SMTP transcripts) and policy decision')
    .argument('<id>', 'queue id')
    .action(async (id: string) => {
      await withRecords(async (r) => {
        const d = await r.show(systemScope, id);
        cli.print({ ...d.record, createdAt: iso(d.record.createdAt), updatedAt: iso(d.record.updatedAt), nextAttemptAt: iso(d.record.nextAttemptAt), recipients: d.recipients, attempts: d.attempts.map((a) => ({ ...a, at: iso(a.at) })) });
      });
    });

  for (const [name, description] of [
    ['retry', 'make the next attempt due now'],
    ['hold', 'hold an entry: it is not delivered until released'],
    ['release', 'release a held entry: delivery resumes at once'],
  ] as const) {
    outbound
      .command(name)
      .description(description)
      .argument('<id>', 'queue id')
      .action(async (id: string) => {
        await withRecords(async (r) => {
          const rec = name === 'retry' ? await r.retryNow(systemScope, id, cliActor) : name === 'hold' ? await r.hold(systemScope, id, cliActor) : await r.release(systemScope, id, cliActor);
          cli.print(outboundSummary(rec));
        });
      });
  }

  outbound
    .command('delete')
    .description('remove an entry from delivery: undelivered recipients are cancelled, or bounced with a DSN to the sender (--bounce)')
    .argument('<id>', 'queue id')
    .option('--bounce', 'send a DSN to the sender for the recipients not yet delivered')
    .action(async (id: string, opts: { bounce?: boolean }) => {
      await withRecords(async (r) => cli.print(outboundSummary(await r.delete(systemScope, id, { bounce: opts.bounce === true }, cliActor))));
    });

  outbound
    .command('stats')
    .description('count outbound entries per status')
    .action(async () => {
      await withRecords(async (r) => cli.print(await r.stats(systemScope)));
    });
}

export function register(program: Command, cli: CliContext): void {
  const queue = program.command('queue').description('inspect and manage queued jobs');
  registerOutbound(queue, cli);

  queue
    .command('list')
    .description('list jobs, oldest first')
    .option('--queue <name>', 'only jobs of this queue')
    .option('--status <status>', `only jobs in this status (${STATUSES.join(', ')})`)
    .option('--limit <n>', `jobs per page, 1–${MAX_LIST_LIMIT}`, '50')
    .option('--cursor <cursor>', 'continue after the page that printed this cursor')
    .action(async (opts: { queue?: string; status?: string; limit: string; cursor?: string }) => {
      if (opts.status !== undefined && !STATUSES.includes(opts.status as JobStatus)) {
        cli.fail(`--status must be one of ${STATUSES.join(', ')} (got ${opts.status})`, 2);
        return;
      }
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
        cli.fail(`--limit must be an integer from 1 to ${MAX_LIST_LIMIT} (got ${opts.limit})`, 2);
        return;
      }
      const app = await cli.open();
      try {
        const page = await app.queue.list({ queue: opts.queue, status: opts.status as JobStatus | undefined, limit, cursor: opts.cursor });
        if (cli.globals().json) {
          cli.print({ jobs: page.jobs.map(detail), cursor: page.cursor });
        } else {
          cli.print(page.jobs.map(summary));
          if (page.cursor) cli.print(`more: --cursor ${page.cursor}`);
        }
      } finally {
        await app.close();
      }
    });

  queue
    .command('show')
    .description('show one job with its payload and last error')
    .argument('<id>', 'job id')
    .action(async (id: string) => {
      const app = await cli.open();
      try {
        const job = await app.queue.get(id);
        if (!job) cli.fail(`job ${id} not found`, 1);
        else cli.print(detail(job));
      } finally {
        await app.close();
      }
    });

  queue
    .command('retry')
    .description('make a waiting or dead job due now (a dead job gets all its attempts again)')
    .argument('<id>', 'job id')
    .action(async (id: string) => {
      const app = await cli.open();
      try {
        if (await app.queue.retryNow(id)) {
          const job = await app.queue.get(id);
          cli.print(job ? detail(job) : { id, retried: true });
          return;
        }
        const job = await app.queue.get(id);
        if (!job) cli.fail(`job ${id} not found`, 1);
        else cli.fail(`job ${id} is ${job.status}; only ready or dead jobs can be retried`, 1);
      } finally {
        await app.close();
      }
    });

  queue
    .command('delete')
    .description('delete a job (a running one is told to abort at its next lease renewal; its result is discarded)')
    .argument('<id>', 'job id')
    .action(async (id: string) => {
      const app = await cli.open();
      try {
        if (await app.queue.delete(id)) cli.print({ id, deleted: true });
        else cli.fail(`job ${id} not found`, 1);
      } finally {
        await app.close();
      }
    });

  queue
    .command('stats')
    .description('count jobs per queue and status')
    .action(async () => {
      const app = await cli.open();
      try {
        cli.print(await app.queue.stats());
      } finally {
        await app.close();
      }
    });
}
