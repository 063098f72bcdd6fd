import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Plans: changes scheduled for the period end, monthly allowance months, and the record that
 * makes each allowance grant happen once per account and month.
 */
export class Plans1764000000700 implements MigrationInterface {
  name = 'Plans1764000000700';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE accounts
        ADD COLUMN pending_tier text REFERENCES tiers (code),
        ADD COLUMN pending_interval text CHECK (pending_interval IN ('MONTHLY', 'ANNUAL')),
        ADD COLUMN allowance_period_start timestamptz,
        ADD COLUMN allowance_period_end timestamptz`);
    await q.query(`CREATE INDEX accounts_period_due ON accounts (current_period_end) WHERE current_period_end IS NOT NULL`);
    await q.query(`CREATE INDEX accounts_allowance_due ON accounts (allowance_period_end) WHERE allowance_period_end IS NOT NULL`);
    await q.query(`
      CREATE TABLE allowance_grants (
        account_id text NOT NULL REFERENCES accounts (id),
        period_start timestamptz NOT NULL,
        period_end timestamptz NOT NULL,
        tier text NOT NULL REFERENCES tiers (code),
        credits int NOT NULL CHECK (credits >= 0),
        purchase_id uuid REFERENCES purchases (id),
        created_at timestamptz NOT NULL,
        PRIMARY KEY (account_id, period_start)
      )`);
    await q.query(`ALTER TABLE purchases ADD COLUMN period_start timestamptz, ADD COLUMN period_end timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE purchases DROP COLUMN period_start, DROP COLUMN period_end`);
    await q.query(`DROP TABLE allowance_grants`);
    await q.query(`DROP INDEX accounts_allowance_due`);
    await q.query(`DROP INDEX accounts_period_due`);
    await q.query(`ALTER TABLE accounts DROP COLUMN pending_tier, DROP COLUMN pending_interval, DROP COLUMN allowance_period_start, DROP COLUMN allowance_period_end`);
  }
}
