/** `mairust serve` (what `npm start` runs) and `mairust reload` (SIGHUP to the running server). */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { loadConfig } from '../config/loader.js';
import { pidFilePath, startServer } from '../app/server.js';
import type { CliContext } from './cli-context.js';

export function register(program: Command, cli: CliContext): void {
  program
    .command('serve')
    .description('start the server (embedded default: SQLite + local files under ./data)')
    .action(async () => {
      const g = cli.globals();
      await startServer({ configPath: g.config, logFormat: g.logFormat, installSignalHandlers: true });
    });

  program
    .command('reload')
    .description('re-apply reloadable configuration keys in the running server (sends SIGHUP)')
    .action(async () => {
      const { config } = await loadConfig({ configPath: cli.globals().config });
      const path = pidFilePath(config);
      let pid: number;
      try {
        pid = Number(readFileSync(path, 'utf8').trim());
      } catch {
        cli.fail(`no running server found (no pid file at ${path})`);
        return;
      }
      try {
        process.kill(pid, 'SIGHUP');
      } catch {
        cli.fail(`server with pid ${pid} is not running (stale pid file ${path})`);
        return;
      }
      cli.print({ signalled: pid, note: 'the server logs which keys were applied and which need a restart' });
    });

  program
    .command('status')
    .description("ask the running server's /health/ready")
    .action(async () => {
      const { config } = await loadConfig({ configPath: cli.globals().config });
      const { host, port } = config.listeners.http;
      const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/health/ready`;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
        cli.print(await res.json());
        if (res.status !== 200) process.exitCode = 1;
      } catch (err) {
        cli.fail(`server not reachable at ${url}: ${(err as Error).message}`);
      }
    });
}
