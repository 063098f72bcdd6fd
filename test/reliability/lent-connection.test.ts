/**
 * A connection the pool has lent out (to a transaction between two statements, or a query
 * about to run) whose backend goes away — a database restart, pg_terminate_backend — must not
 * take the process down: pg emits 'error' on such a client, and an 'error' with no listener is
 * an uncaught exception. Found by the soak (an instance died at a fast shutdown).
 */
import type { Pool } from 'pg';
import { useTestApp } from '../helpers/test-app';

const t = useTestApp();

it('survives the backend of a lent-out connection being terminated, and serves the next request', async () => {
  // The service's pool, lending a connection as it does to every statement (before the caller's own listener, if any, is attached).
  const pool = (t.app.server.services.db.driver as unknown as { master: Pool }).master;
  const client = await pool.connect();
  const { rows: [{ pid }] } = await client.query('SELECT pg_backend_pid() AS pid');
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown) => uncaught.push(e);
  process.on('uncaughtException', onUncaught);
  try {
    const { rows } = await t.app.audit.query('SELECT pg_terminate_backend($1) AS done', [pid]);
    expect(rows[0].done).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    process.off('uncaughtException', onUncaught);
    client.release(true);
  }
  expect(uncaught).toEqual([]);
  const me = await t.app.raw<{ me: { id: string } }>('{ me { id } }', undefined, { sub: 'lent-1' });
  expect(me.data?.me.id).toBe('lent-1');
});
