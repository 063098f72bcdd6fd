/**
 * Single statements outside an explicit transaction (each is its own transaction), straight
 * on TypeORM's pg pool: one round trip, no BEGIN/COMMIT. Used on hot paths whose whole change
 * fits in one statement.
 */
import type { Pool } from 'pg';
import type { DataSource } from 'typeorm';

/** Runs one statement; a `name` makes it a prepared statement, planned once per connection. */
export type Sql = <R = Record<string, unknown>>(text: string, params?: unknown[], name?: string) => Promise<R[]>;

export function sqlOf(db: DataSource): Sql {
  let pool: Pool | undefined;
  return async (text, params, name) => {
    pool ??= (db.driver as unknown as { master: Pool }).master;
    return (await pool.query({ text, values: params, name })).rows;
  };
}

/** True when `e` is a unique violation of `constraint`. */
export function isUniqueViolation(e: unknown, constraint: string): boolean {
  const err = e as { code?: string; constraint?: string };
  return err?.code === '23505' && err.constraint === constraint;
}
