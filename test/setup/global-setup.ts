/**
 * Starts one real PostgreSQL for the whole run (embedded, on a free port, in a temporary
 * folder) unless DATABASE_URL names one, and migrates a template database that every test
 * file clones (CREATE DATABASE … TEMPLATE), so each file starts from a fresh, migrated schema.
 * The template is migrated by the owner (the server's superuser), grants included, so every
 * clone comes with them; the test servers connect as a runtime login role, a member of
 * credits_runtime (TEST_PG_RUNTIME_URL: the embedded database's own `credits_app`, or on
 * another server a role of this run, dropped at the end).
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import pino from 'pino';
import { createDataSource } from '../../ormconfig';
import { ensureRuntimeRole, startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/common/db/embedded-postgres';
import { migrate } from '../../src/common/db/migrate';

declare global {
  // eslint-disable-next-line no-var
  var __TEST_PG__: { embedded?: EmbeddedDatabase; dataDir?: string; adminUrl: string; template: string; runtimeRole?: string } | undefined;
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export default async function globalSetup(): Promise<void> {
  const log = pino({ level: 'warn' });
  let embedded: EmbeddedDatabase | undefined;
  let dataDir: string | undefined;
  let baseUrl = process.env.DATABASE_URL;
  let runtimeUrl: string;
  let runtimeRole: string | undefined;
  if (!baseUrl) {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'credits-test-'));
    embedded = await startEmbeddedPostgres({ dataDir, port: 0, database: 'postgres', log });
    baseUrl = embedded.url;
    runtimeUrl = embedded.runtimeUrl;
  } else {
    // A login role of this run's own: runs sharing a server never change each other's password.
    runtimeRole = `credits_t_${process.pid}_app`;
    const u = new URL(withDatabase(baseUrl, 'postgres'));
    u.username = runtimeRole;
    u.password = randomBytes(18).toString('base64url');
    runtimeUrl = u.toString();
  }
  const adminUrl = withDatabase(baseUrl, 'postgres');
  const template = `credits_tpl_${process.pid}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  if (runtimeRole) await ensureRuntimeRole(admin, runtimeRole, decodeURIComponent(new URL(runtimeUrl).password));
  await admin.query(`DROP DATABASE IF EXISTS ${template}`);
  await admin.query(`CREATE DATABASE ${template}`);
  await admin.end();
  const ds = createDataSource(withDatabase(baseUrl, template), 2);
  await ds.initialize();
  await migrate(ds);
  await ds.destroy();
  process.env.TEST_PG_ADMIN_URL = adminUrl;
  process.env.TEST_PG_TEMPLATE = template;
  process.env.TEST_PG_RUNTIME_URL = runtimeUrl;
  process.env.TEST_RUN_ID = String(process.pid);
  globalThis.__TEST_PG__ = { embedded, dataDir, adminUrl, template, runtimeRole };
}
