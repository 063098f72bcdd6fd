import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Runway (issue 14): each account's generation spend per UTC day, kept by a statement trigger on
 * ledger_entries (db/functions/ledger_daily_spend.sql), so the 30-day average is a read of at
 * most 30 rows — never a scan of the ledger. Filled from the ledger for what came before.
 */
export class DailySpend1764000017000 implements MigrationInterface {
  name = 'DailySpend1764000017000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE account_daily_spend (
        account_id text NOT NULL REFERENCES accounts (id),
        day date NOT NULL,
        spent int NOT NULL CHECK (spent >= 0),
        refunded int NOT NULL CHECK (refunded >= 0),
        PRIMARY KEY (account_id, day)
      )`);
    await q.query(`
      INSERT INTO account_daily_spend (account_id, day, spent, refunded)
      SELECT account_id, (created_at AT TIME ZONE 'UTC')::date,
             coalesce(sum(-amount) FILTER (WHERE kind = 'DEBIT'), 0), coalesce(sum(amount) FILTER (WHERE kind = 'REFUND'), 0)
        FROM ledger_entries WHERE kind IN ('DEBIT', 'REFUND') GROUP BY 1, 2`);
    await q.query(`CREATE TRIGGER ledger_entries_daily_spend AFTER INSERT ON ledger_entries REFERENCING NEW TABLE AS new_entries
                   FOR EACH STATEMENT EXECUTE FUNCTION ledger_daily_spend()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER ledger_entries_daily_spend ON ledger_entries`);
    await q.query(`DROP TABLE account_daily_spend`);
  }
}
