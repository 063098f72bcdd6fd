/**
 * Every connection of the service's pool keeps an 'error' listener of its own, lent out or not.
 * pg emits 'error' on a client whose backend goes away (a database restart, pg_terminate_backend)
 * when no query is waiting to receive it; the pool listens only while a client is idle, and a
 * caller (TypeORM's query runner, pg's pool.query) only for part of the time it holds one — an
 * 'error' in between is an uncaught exception that takes the process down. The soak found it:
 * an instance died at a fast shutdown of PostgreSQL. The failed statement itself still fails
 * (and is answered SERVICE_UNAVAILABLE); this only keeps the process up.
 */
import type { Pool, PoolClient } from 'pg';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';

export function guardPoolErrors(db: DataSource, log: Logger): void {
  const pool = (db.driver as unknown as { master: Pool & { _clients?: PoolClient[] } }).master;
  const guard = (client: PoolClient) => {
    client.on('error', (err) => log.debug({ err: err.message }, 'a database connection was lost'));
  };
  pool.on('connect', guard);
  // The connection TypeORM opened while initialising is older than the listener.
  for (const c of pool._clients ?? []) guard(c);
}
