/** Shared pieces of the benchmarks: a fresh database with seeded accounts, servers as child processes, CPU readings. */
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import pino from 'pino';
import { createDataSource } from '../ormconfig';
import { migrate } from '../src/common/db/migrate';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../src/common/db/embedded-postgres';

export const ROOT = path.resolve(__dirname, '..');
export const SECRET = 'bench-secret-0123456789abcdef-0123456789';

export interface Result {
  name: string;
  rps: number;
  p50: number | null;
  p99: number | null;
  errors: number;
  /** CPU milliseconds per request: the server process, and all PostgreSQL processes. */
  serverCpu?: number;
  dbCpu?: number;
}

/** CPU ticks (user + system) of a process, from /proc (Linux); 0 elsewhere. */
export function cpuTicks(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return Number(parts[11]) + Number(parts[12]);
  } catch {
    return 0;
  }
}

/**
 * CPU ticks of the PostgreSQL processes: those of the embedded cluster under `pgDir` when
 * given (its postmaster and children: other PostgreSQL servers on the machine do not count),
 * else of every process named postgres.
 */
export function postgresTicks(pgDir?: string): number {
  let postmaster: number | undefined;
  if (pgDir) {
    try {
      postmaster = Number(readFileSync(path.join(pgDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      postmaster = undefined;
    }
  }
  let sum = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (postmaster) {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (Number(d) !== postmaster && ppid !== postmaster) continue;
      } else if (!readFileSync(`/proc/${d}/comm`, 'utf8').trim().startsWith('postgres')) continue;
      sum += cpuTicks(Number(d));
    } catch {
      /* gone */
    }
  }
  return sum;
}

export function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export interface BenchDatabase {
  url: string;
  embedded?: EmbeddedDatabase;
  dir?: string;
  /** The embedded cluster's data folder (for its processes' CPU). */
  pgDir?: string;
}

/** A fresh, migrated database with accounts `ids`, each holding a billion credits. */
export async function database(ids: string[]): Promise<BenchDatabase> {
  const name = `credits_bench_${process.pid}`;
  let base = process.env.DATABASE_URL;
  let embedded: EmbeddedDatabase | undefined;
  let dir: string | undefined;
  if (!base) {
    dir = await mkdtemp(path.join(os.tmpdir(), 'credits-bench-'));
    embedded = await startEmbeddedPostgres({ dataDir: dir, port: 0, database: 'postgres', log: pino({ level: 'warn' }) });
    base = embedded.url;
  }
  const admin = new Client({ connectionString: withDatabase(base, 'postgres') });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = withDatabase(base, name);
  const ds = createDataSource(url, 2);
  await ds.initialize();
  await migrate(ds);
  await ds.query(
    `INSERT INTO accounts (id, tier, plan_status, available, low_credit_threshold, created_at, updated_at)
     SELECT id, 'FREE', 'ACTIVE', 0, 0, now(), now() FROM unnest($1::text[]) id`,
    [ids],
  );
  await ds.query(
    `SELECT count(*) FROM unnest($1::text[]) id,
       LATERAL ledger_grant(id, 1000000000, 'ADJUSTMENT', 'ADJUSTMENT', 'bench funds', NULL, NULL, NULL, NULL, 'bench', now())`,
    [ids],
  );
  await ds.destroy();
  return { url, embedded, dir, pgDir: dir ? path.join(dir, 'pg') : undefined };
}

/** A funded workspace whose members are `members` (the first its OWNER): the hot-workspace run. */
export async function benchWorkspace(url: string, id: string, members: string[]): Promise<void> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`INSERT INTO accounts (id, kind, tier, plan_status, available, low_credit_threshold, created_at, updated_at) VALUES ($1, 'WORKSPACE', 'FREE', 'ACTIVE', 0, 0, now(), now())`, [id]);
    await c.query(`INSERT INTO accounts (id, tier, plan_status, available, low_credit_threshold, created_at, updated_at) SELECT m, 'FREE', 'ACTIVE', 0, 0, now(), now() FROM unnest($1::text[]) m`, [members]);
    await c.query(`INSERT INTO workspaces (id, name, created_by, created_at) VALUES ($1, 'bench', $2, now())`, [id, members[0]]);
    await c.query(
      `INSERT INTO workspace_members (workspace_id, account_id, role, monthly_limit, joined_at)
       SELECT $1, m, CASE WHEN n = 1 THEN 'OWNER' ELSE 'MEMBER' END, 1000000000, now() FROM unnest($2::text[]) WITH ORDINALITY AS u(m, n)`,
      [id, members],
    );
    await c.query(`SELECT ledger_grant($1, 1000000000, 'ADJUSTMENT', 'ADJUSTMENT', 'bench funds', NULL, NULL, NULL, NULL, 'bench', now())`, [id]);
  } finally {
    await c.end();
  }
}

/** Starts a server as a child process and waits until GET `readyUrl` answers 200. */
/**
 * Production refuses to start without a real payment provider. The benchmarks buy nothing, so
 * Stripe is configured with keys that are never used (no purchase, no intent, no call).
 */
export const BENCH_PAYMENTS = { PAYMENT_PROVIDER: 'stripe', STRIPE_SECRET_KEY: 'sk_test_bench_never_called', STRIPE_WEBHOOK_SECRET: 'whsec_bench_never_called' };

export function startChild(args: string[], env: Record<string, string>, readyUrl: string): Promise<ChildProcess> {
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', path.join(os.tmpdir(), 'credits-bench-profiles')] : [];
  const child = spawn(process.execPath, [...profile, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}:\n${out}`)));
    const poll = () =>
      fetch(readyUrl).then(
        (r) => (r.status === 200 ? resolve(child) : setTimeout(poll, 100)),
        () => setTimeout(poll, 100),
      );
    poll();
  });
}

export async function stopChild(child: ChildProcess): Promise<void> {
  child.removeAllListeners('exit');
  const exited = new Promise((r) => child.on('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  child.kill('SIGKILL');
}


/** Drops the bench database and stops what database() started. */
export async function dropDatabase(db: BenchDatabase): Promise<void> {
  const admin = new Client({ connectionString: withDatabase(db.url, 'postgres') });
  await admin.connect();
  await admin.query(`DROP DATABASE ${new URL(db.url).pathname.slice(1)} WITH (FORCE)`);
  await admin.end();
  await db.embedded?.stop();
  if (db.dir) await rm(db.dir, { recursive: true, force: true });
}

/** Resident memory of a process in bytes (Linux). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}
