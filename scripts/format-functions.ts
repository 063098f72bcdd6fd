/**
 * `npm run db:format`: after editing a file in db/functions, rewrites every function file as
 * PostgreSQL prints the definition (pg_get_functiondef), keeping its leading comment — the form
 * the drift test (test/db-functions.test.ts) compares. Migrates a scratch database on an
 * embedded PostgreSQL (or on DATABASE_URL's server) and drops it after.
 */
import 'reflect-metadata';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import pino from 'pino';
import { createDataSource } from '../ormconfig';
import { startEmbeddedPostgres } from '../src/common/db/embedded-postgres';
import { functionFiles, functionsDir } from '../src/common/db/functions';
import { migrate } from '../src/common/db/migrate';

async function main(): Promise<void> {
  const log = pino({ level: 'warn' });
  const dataDir = process.env.DATABASE_URL ? undefined : await mkdtemp(path.join(os.tmpdir(), 'credits-format-'));
  const embedded = dataDir ? await startEmbeddedPostgres({ dataDir, port: 0, database: 'postgres', log }) : undefined;
  const server = new URL(embedded?.url ?? process.env.DATABASE_URL!);
  const scratch = `credits_format_${process.pid}`;
  server.pathname = '/postgres';
  const admin = new Client({ connectionString: server.toString() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${scratch}`);
    server.pathname = `/${scratch}`;
    const ds = createDataSource(server.toString(), 2);
    await ds.initialize();
    await migrate(ds);
    for (const f of functionFiles()) {
      const rows = (await ds.query(`SELECT pg_get_functiondef(p.oid) AS def FROM pg_proc p WHERE p.proname = $1 AND p.pronamespace = 'public'::regnamespace`, [f.name])) as { def: string }[];
      const next = (f.sql.match(/^(--[^\n]*\n)+/)?.[0] ?? '') + rows[0].def.trim() + '\n';
      if (next !== f.sql) {
        await writeFile(path.join(functionsDir(), `${f.name}.sql`), next);
        console.log(`rewrote db/functions/${f.name}.sql`);
      }
    }
    await ds.destroy();
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${scratch}`);
    await admin.end();
    await embedded?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
