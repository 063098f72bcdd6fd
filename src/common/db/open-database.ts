/**
 * The database of an instance: DATABASE_URL, or the embedded PostgreSQL under DATA_DIR; brought
 * to the code's schema (functions, then migrations, then grants) before anything uses it. Two
 * roles: the owner migrates (DATABASE_OWNER_URL; the embedded database's superuser), the pool
 * connects as the runtime role (DATABASE_URL; the embedded `credits_app`), a member of
 * `credits_runtime`, which may read and append to the ledger but owns nothing — see
 * docs/OPERATIONS.md, "Database roles". Without DATABASE_OWNER_URL one role does both.
 */
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import { createDataSource } from '../../../ormconfig';
import type { Config } from '../../config';
import { RUNTIME_GROUP, startEmbeddedPostgres, type EmbeddedDatabase } from './embedded-postgres';
import { migrate } from './migrate';
import { guardPoolErrors } from './pool-errors';
import { chooseEventTransport, type EventTransport } from '../events/event-transport';

export async function openDatabase(config: Config, log: Logger): Promise<{ db: DataSource; url: string; ownerUrl: string; events: EventTransport; embedded?: EmbeddedDatabase }> {
  let embedded: EmbeddedDatabase | undefined;
  let url = config.databaseUrl;
  let ownerUrl = config.databaseOwnerUrl;
  if (!url) {
    if (config.databaseOwnerUrl) log.warn('DATABASE_OWNER_URL is ignored without DATABASE_URL: the embedded database has its own roles');
    embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort, database: 'credits', log });
    url = embedded.runtimeUrl;
    ownerUrl = embedded.url;
    log.info({ dataDir: config.dataDir, port: embedded.port }, 'embedded PostgreSQL is up');
  } else if (!ownerUrl) {
    ownerUrl = url;
    if (config.production) log.warn('DATABASE_OWNER_URL is unset: the service runs as the owner of its tables, which could disable the ledger\'s immutability triggers (see docs/OPERATIONS.md, "Database roles")');
  }
  // Migrations as the owner on a connection of their own, without the service's statement
  // limits (a migration may rightly take longer); then the service's pool, with them.
  const migrator = createDataSource(ownerUrl, 1, 'credits-migrate');
  const db = createDataSource(url, config.dbPoolSize, 'credits-service', { lockTimeoutMs: config.dbLockTimeoutMs, statementTimeoutMs: config.dbStatementTimeoutMs });
  let events: EventTransport = 'notify';
  try {
    await migrator.initialize();
    const applied = await migrate(migrator);
    if (applied.functions.length || applied.migrations.length) log.info(applied, 'database functions and migrations applied');
    // Before the pool connects: its sessions take the database's setting of how events are sent.
    events = await chooseEventTransport(migrator, config.eventsTransport, log);
    await migrator.destroy();
    await db.initialize();
    guardPoolErrors(db, log);
    if (ownerUrl !== url) {
      // A runtime role without the grants would fail every request: say so at start instead.
      const [{ member }] = (await db.query(
        `SELECT coalesce((SELECT pg_has_role(current_user, oid, 'USAGE') FROM pg_roles WHERE rolname = $1), false) AS member`,
        [RUNTIME_GROUP],
      )) as { member: boolean }[];
      if (!member) throw new Error(`the role of DATABASE_URL is not a member of ${RUNTIME_GROUP} (GRANT ${RUNTIME_GROUP} TO <it>; see docs/OPERATIONS.md, "Database roles")`);
    }
  } catch (e) {
    if (migrator.isInitialized) await migrator.destroy().catch(() => undefined);
    if (db.isInitialized) await db.destroy().catch(() => undefined);
    await embedded?.stop();
    throw e;
  }
  return { db, url, ownerUrl: ownerUrl!, events, embedded };
}
