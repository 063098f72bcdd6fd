import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The ledger primitives as database functions, so that a change holds the account row lock
 * only while PostgreSQL itself works (one round trip), never across client round trips.
 *
 * Each function first takes the account row lock with a conditional UPDATE of `available`;
 * its later statements run on fresh snapshots (READ COMMITTED, VOLATILE), so they see every lot
 * change committed before the lock was granted. Each writes the entry, the lots, the lot
 * movements and the balance event (pg_notify, delivered at commit) and returns the balance.
 * Every path that changes lots goes through these functions.
 */
export class LedgerFunctions1764000000200 implements MigrationInterface {
  name = 'LedgerFunctions1764000000200';

  async up(q: QueryRunner): Promise<void> {
    // The functions (ledger_debit, ledger_grant, ledger_refund_job, ledger_balance_event) are
    // defined in db/functions; here only what backs them: one debit and one refund per job.
    await q.query(`CREATE UNIQUE INDEX ledger_entries_one_debit_per_job ON ledger_entries (job_id) WHERE kind = 'DEBIT'`);
    await q.query(`CREATE UNIQUE INDEX ledger_entries_one_refund_per_job ON ledger_entries (job_id) WHERE kind = 'REFUND'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX ledger_entries_one_refund_per_job`);
    await q.query(`DROP INDEX ledger_entries_one_debit_per_job`);
  }
}
