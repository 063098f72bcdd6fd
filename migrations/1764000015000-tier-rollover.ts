import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Rollover (issue 14): the months a tier's unused allowance is kept after its month — catalog
 * data, like the rest of a tier. PRO keeps a month's credits one month more, MAX two.
 */
export class TierRollover1764000015000 implements MigrationInterface {
  name = 'TierRollover1764000015000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tiers ADD COLUMN rollover_months int NOT NULL DEFAULT 0 CHECK (rollover_months BETWEEN 0 AND 12)`);
    await q.query(`UPDATE tiers SET rollover_months = CASE code WHEN 'PRO' THEN 1 WHEN 'MAX' THEN 2 ELSE 0 END`);
    // When each month's lot expires (null for months granted before rollover: at their end).
    await q.query(`ALTER TABLE allowance_grants ADD COLUMN lot_expires_at timestamptz CHECK (lot_expires_at >= period_end)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE allowance_grants DROP COLUMN lot_expires_at`);
    await q.query(`ALTER TABLE tiers DROP COLUMN rollover_months`);
  }
}
