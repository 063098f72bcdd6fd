import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Expiry warnings (issue 14): CREDITS_EXPIRING notifications, and which lot was warned at which
 * lead time (7 days, 1 day) — once per lot and lead time, whatever the number of instances (the
 * key). Lots by expiry for the sweeps (expires_at never changes, so debits keep their HOT updates).
 */
export class ExpiryWarnings1764000016000 implements MigrationInterface {
  name = 'ExpiryWarnings1764000016000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check`);
    await q.query(`ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
      'LOW_CREDITS', 'CREDITS_DEPLETED', 'JOB_FINISHED', 'PURCHASE_COMPLETED', 'REFUND_DECIDED', 'PLAN_RENEWED', 'PLAN_ENDED', 'PAYMENT_REVERSED', 'CREDITS_EXPIRING'))`);
    await q.query(`
      CREATE TABLE expiry_warnings (
        lot_id uuid NOT NULL REFERENCES credit_lots (id),
        lead_days int NOT NULL CHECK (lead_days IN (1, 7)),
        credits int NOT NULL CHECK (credits > 0),
        created_at timestamptz NOT NULL,
        PRIMARY KEY (lot_id, lead_days)
      )`);
    await q.query(`CREATE INDEX credit_lots_expiry ON credit_lots (expires_at) WHERE expires_at IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX credit_lots_expiry`);
    await q.query(`DROP TABLE expiry_warnings`);
    await q.query(`DELETE FROM notifications WHERE kind = 'CREDITS_EXPIRING'`);
    await q.query(`ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check`);
    await q.query(`ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
      'LOW_CREDITS', 'CREDITS_DEPLETED', 'JOB_FINISHED', 'PURCHASE_COMPLETED', 'REFUND_DECIDED', 'PLAN_RENEWED', 'PLAN_ENDED', 'PAYMENT_REVERSED'))`);
  }
}
