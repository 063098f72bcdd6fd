/**
 * The database functions live as source files, one per function: db/functions/<name>.sql, each
 * its current definition (`CREATE OR REPLACE FUNCTION …`, as pg_get_functiondef prints it, under
 * a comment saying what it does). At every start, before the migrations, the files whose
 * checksum changed are applied in one transaction (an advisory lock keeps two instances from
 * doing it at once); `schema_functions` keeps what was applied. Migrations keep tables,
 * constraints and data only. test/db-functions.test.ts compares every file with the migrated
 * database, so the files cannot drift.
 *
 * Composite types the functions take (db/types/<name>.sql, `CREATE TYPE …`) are applied the same
 * way, first: a changed type is dropped and created again, with every function after it (a
 * function taking the type goes with it). A function file whose signature changed replaces the
 * old one: after a file is applied, any other function of its name is dropped, so one name has
 * one definition.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { DataSource, QueryRunner } from 'typeorm';

/** db/functions (or db/types) from the source tree (ts-node) or from dist/ (the build). */
export function functionsDir(kind: 'functions' | 'types' = 'functions'): string {
  for (const up of ['../../..', '../../../..']) {
    const dir = path.resolve(__dirname, up, 'db', kind);
    if (existsSync(dir)) return dir;
  }
  throw new Error(`db/${kind} not found next to the service`);
}

export interface FunctionFile {
  name: string;
  sql: string;
  checksum: string;
}

export function functionFiles(dir = functionsDir()): FunctionFile[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => {
      const sql = readFileSync(path.join(dir, f), 'utf8');
      return { name: f.slice(0, -4), sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

/** The definition as PostgreSQL keeps it: the file without its leading comment lines. */
export const definitionOf = (sql: string): string => sql.replace(/^(--[^\n]*\n)+/, '').trim();

/** Applies the type and function files that changed since they were last applied; returns their names. */
export async function applyFunctions(db: DataSource): Promise<string[]> {
  const types = functionFiles(functionsDir('types')).map((f) => ({ ...f, name: `type:${f.name}`, type: f.name }));
  const files = functionFiles();
  const runner = db.createQueryRunner();
  await runner.connect();
  try {
    await runner.startTransaction();
    await runner.query(`SELECT pg_advisory_xact_lock(hashtext('credits:schema_functions'))`);
    await runner.query(`CREATE TABLE IF NOT EXISTS schema_functions (name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const applied = new Map(((await runner.query('SELECT name, checksum FROM schema_functions')) as { name: string; checksum: string }[]).map((r) => [r.name, r.checksum]));
    const changedTypes = types.filter((t) => applied.get(t.name) !== t.checksum);
    const changed = [...changedTypes, ...(changedTypes.length ? files : files.filter((f) => applied.get(f.name) !== f.checksum))];
    for (const f of changed) {
      if ('type' in f) await runner.query(`DROP TYPE IF EXISTS public.${f.type} CASCADE`);
      await runner.query(f.sql);
      if (!('type' in f)) await dropOtherSignatures(runner, f);
      await runner.query(
        `INSERT INTO schema_functions (name, checksum) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()`,
        [f.name, f.checksum],
      );
    }
    await runner.commitTransaction();
    return changed.map((f) => f.name);
  } catch (e) {
    if (runner.isTransactionActive) await runner.rollbackTransaction();
    throw e;
  } finally {
    await runner.release();
  }
}

/** Drops the functions of the file's name whose definition is not the file's (an old signature). */
async function dropOtherSignatures(runner: QueryRunner, f: FunctionFile): Promise<void> {
  const defs = (await runner.query(
    `SELECT p.oid::regprocedure::text AS signature, pg_get_functiondef(p.oid) AS def FROM pg_proc p WHERE p.proname = $1 AND p.pronamespace = 'public'::regnamespace`,
    [f.name],
  )) as { signature: string; def: string }[];
  for (const d of defs) if (d.def.trim() !== definitionOf(f.sql)) await runner.query(`DROP FUNCTION ${d.signature}`);
}
