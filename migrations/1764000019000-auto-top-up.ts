import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Auto top-up (issue 14): an account's settings, and where its automatic buying stands — a
 * crossing waiting for its purchase (`requested_at`, set by db/functions/auto_top_up_request.sql
 * in the transaction of the debit that crossed), or the automatic purchase in flight
 * (`purchase_id`, PENDING). Never both: at most one purchase in flight per account.
 */
export class AutoTopUp1764000019000 implements MigrationInterface {
  name = 'AutoTopUp1764000019000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE purchases ADD COLUMN automatic boolean NOT NULL DEFAULT false`);
    await q.query(`ALTER TABLE purchases ADD CONSTRAINT purchases_automatic_pack CHECK (NOT automatic OR kind = 'CREDIT_PACK')`);
    await q.query(`CREATE INDEX purchases_automatic_month ON purchases (account_id, created_at) WHERE automatic`);
    await q.query(`
      CREATE TABLE auto_top_ups (
        account_id text PRIMARY KEY REFERENCES accounts (id),
        enabled boolean NOT NULL,
        pack_code text NOT NULL REFERENCES credit_packs (code),
        below_credits int NOT NULL CHECK (below_credits BETWEEN 1 AND 1000000),
        max_per_month int NOT NULL CHECK (max_per_month BETWEEN 1 AND 31),
        failed_attempts int NOT NULL DEFAULT 0 CHECK (failed_attempts BETWEEN 0 AND 3),
        requested_at timestamptz,
        purchase_id uuid REFERENCES purchases (id),
        last_purchase_at timestamptz,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL, -- the settings' last change (setAutoTopUp, disableAutoTopUp)
        CHECK (requested_at IS NULL OR purchase_id IS NULL),
        CHECK (failed_attempts < 3 OR NOT enabled)
      )`);
    await q.query(`CREATE INDEX auto_top_ups_requested ON auto_top_ups (requested_at) WHERE requested_at IS NOT NULL`);
    await q.query(`ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check`);
    await q.query(`ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
      'LOW_CREDITS', 'CREDITS_DEPLETED', 'JOB_FINISHED', 'PURCHASE_COMPLETED', 'REFUND_DECIDED', 'PLAN_RENEWED', 'PLAN_ENDED', 'PAYMENT_REVERSED', 'CREDITS_EXPIRING',
      'AUTO_TOP_UP_COMPLETED', 'AUTO_TOP_UP_FAILED'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM notifications WHERE kind IN ('AUTO_TOP_UP_COMPLETED', 'AUTO_TOP_UP_FAILED')`);
    await q.query(`ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check`);
    await q.query(`ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
      'LOW_CREDITS', 'CREDITS_DEPLETED', 'JOB_FINISHED', 'PURCHASE_COMPLETED', 'REFUND_DECIDED', 'PLAN_RENEWED', 'PLAN_ENDED', 'PAYMENT_REVERSED', 'CREDITS_EXPIRING'))`);
    await q.query(`DROP TABLE auto_top_ups`);
    await q.query(`DROP INDEX purchases_automatic_month`);
    await q.query(`ALTER TABLE purchases DROP COLUMN automatic`);
  }
}
