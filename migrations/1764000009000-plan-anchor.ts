import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A plan's calendar is counted from its anchor (its first period's start): periods and allowance
 * months end on that day of the month, clamped to shorter months (Jan 31 → Feb 28 → Mar 31), as
 * Stripe bills them — they no longer drift to the 28th after a short month.
 */
export class PlanAnchor1764000009000 implements MigrationInterface {
  name = 'PlanAnchor1764000009000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE accounts ADD COLUMN period_anchor timestamptz`);
    await q.query(`UPDATE accounts SET period_anchor = current_period_start WHERE current_period_start IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE accounts DROP COLUMN period_anchor`);
  }
}
