import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import { isRetryableDbError } from '../errors/graphql-errors';

/** One open transaction: raw SQL returning rows, and TypeORM's manager for repository work. */
export interface Tx {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  manager: EntityManager;
}

function txOf(runner: QueryRunner): Tx {
  return {
    query: async (sql, params) => (await runner.query(sql, params, true)).records,
    manager: runner.manager,
  };
}

const MAX_ATTEMPTS = 5;

/** Raised inside a transaction to roll it back and hand a value to the caller. */
export class Rollback<T> extends Error {
  constructor(readonly value: T) {
    super('rollback');
  }
}

/**
 * Runs `fn` in one transaction (READ COMMITTED). Serialization failures and deadlocks are
 * retried a bounded number of times; any other error rolls back and propagates.
 * Throwing `Rollback(value)` rolls back and returns `value`.
 */
export async function transaction<T>(db: DataSource, fn: (tx: Tx) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const runner = db.createQueryRunner();
    await runner.connect();
    try {
      await runner.startTransaction();
      const result = await fn(txOf(runner));
      await runner.commitTransaction();
      return result;
    } catch (e) {
      if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
      if (e instanceof Rollback) return e.value as T;
      if (attempt < MAX_ATTEMPTS && isRetryableDbError(e)) {
        await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
        continue;
      }
      throw e;
    } finally {
      await runner.release();
    }
  }
}
