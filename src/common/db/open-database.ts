/**
 * The database of an instance: DATABASE_URL, or the embedded PostgreSQL under DATA_DIR; brought
 * to the code's schema (functions, then migrations) before anything uses it.
 */
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import { createDataSource } from '../../../ormconfig';
import type { Config } from '../../config';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './embedded-postgres';
import { migrate } from './migrate';

export async function openDatabase(config: Config, log: Logger): Promise<{ db: DataSource; url: string; embedded?: EmbeddedDatabase }> {
  let embedded: EmbeddedDatabase | undefined;
  let url = config.databaseUrl;
  if (!url) {
    embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort, database: 'credits', log });
    url = embedded.url;
    log.info({ dataDir: config.dataDir, port: embedded.port }, 'embedded PostgreSQL is up');
  }
  // Migrations on a connection of their own, without the service's statement limits (a
  // migration may rightly take longer); then the service's pool, with them.
  const migrator = createDataSource(url, 1, 'credits-migrate');
  const db = createDataSource(url, config.dbPoolSize, 'credits-service', { lockTimeoutMs: config.dbLockTimeoutMs, statementTimeoutMs: config.dbStatementTimeoutMs });
  try {
    await migrator.initialize();
    const applied = await migrate(migrator);
    if (applied.functions.length || applied.migrations.length) log.info(applied, 'database functions and migrations applied');
    await migrator.destroy();
    await db.initialize();
  } catch (e) {
    if (migrator.isInitialized) await migrator.destroy().catch(() => undefined);
    if (db.isInitialized) await db.destroy().catch(() => undefined);
    await embedded?.stop();
    throw e;
  }
  return { db, url, embedded };
}
