import { rm } from 'node:fs/promises';
import { Client } from 'pg';

export default async function globalTeardown(): Promise<void> {
  const t = globalThis.__TEST_PG__;
  if (!t) return;
  const admin = new Client({ connectionString: t.adminUrl });
  await admin.connect();
  const dbs = await admin.query(`SELECT datname FROM pg_database WHERE datname LIKE 'credits_t_' || $2 || '_%' OR datname = $1`, [t.template, String(process.pid)]);
  for (const { datname } of dbs.rows) await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
  // This run's runtime login role (another server than the embedded one); it owns nothing.
  if (t.runtimeRole) await admin.query(`DROP ROLE IF EXISTS ${t.runtimeRole}`).catch((e) => console.warn(`could not drop role ${t.runtimeRole}: ${e}`));
  await admin.end();
  await t.embedded?.stop();
  if (t.dataDir) await rm(t.dataDir, { recursive: true, force: true });
}
