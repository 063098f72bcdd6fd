/**
 * Brings a database to the code's schema: the SQL functions from db/functions first (the
 * changed ones, see functions.ts), then the pending migrations (tables, constraints, data) in
 * one transaction, then the runtime role's privileges (db/grants.sql, at every run: a new table
 * is covered). The service runs it at start as the owner (DATABASE_OWNER_URL when set); the
 * tests on their template database.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import { applyFunctions, functionsDir } from './functions';

export async function migrate(db: DataSource): Promise<{ functions: string[]; migrations: string[] }> {
  const functions = await applyFunctions(db);
  const migrations = (await db.runMigrations({ transaction: 'all' })).map((m) => m.name);
  await applyGrants(db);
  return { functions, migrations };
}

/** db/grants.sql in one transaction, under the functions' lock (concurrent GRANTs on one object fail). */
async function applyGrants(db: DataSource): Promise<void> {
  const sql = readFileSync(path.join(functionsDir(), '..', 'grants.sql'), 'utf8');
  const runner = db.createQueryRunner();
  await runner.connect();
  try {
    await runner.startTransaction();
    await runner.query(`SELECT pg_advisory_xact_lock(hashtext('credits:schema_functions'))`);
    await runner.query(sql);
    await runner.commitTransaction();
  } catch (e) {
    if (runner.isTransactionActive) await runner.rollbackTransaction();
    throw e;
  } finally {
    await runner.release();
  }
}
