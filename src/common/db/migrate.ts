/**
 * Brings a database to the code's schema: the SQL functions from db/functions first (the
 * changed ones, see functions.ts), then the pending migrations (tables, constraints, data) in
 * one transaction. The service runs it at start; the tests on their template database.
 */
import type { DataSource } from 'typeorm';
import { applyFunctions } from './functions';

export async function migrate(db: DataSource): Promise<{ functions: string[]; migrations: string[] }> {
  const functions = await applyFunctions(db);
  const migrations = (await db.runMigrations({ transaction: 'all' })).map((m) => m.name);
  return { functions, migrations };
}
