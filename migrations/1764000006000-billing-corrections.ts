import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Billing corrections (second round):
 * - notifications PLAN_ENDED (a plan ended; PLAN_RENEWED is only a new period) and
 *   PAYMENT_REVERSED (money went back to the buyer outside requestRefund);
 * - purchases may be DISPUTED;
 * - a DENIED refund request does not block a later one: at most one PENDING_REVIEW or APPROVED
 *   request per purchase (was: one request per purchase, ever);
 * - a revocation (a refund the user asked for, a reversal) never fires LOW or DEPLETED: the
 *   balance event is sent, the warnings stay quiet (they re-arm when the balance climbs back);
 * - a job refunded into a lot of a refunded or disputed purchase is withdrawn again at once; a
 *   partially refunded annual plan keeps its current month's credits until that month ends.
 */
export class BillingCorrections1764000006000 implements MigrationInterface {
  name = 'BillingCorrections1764000006000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check`);
    await q.query(`ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
      'LOW_CREDITS', 'CREDITS_DEPLETED', 'JOB_FINISHED', 'PURCHASE_COMPLETED', 'REFUND_DECIDED', 'PLAN_RENEWED', 'PLAN_ENDED', 'PAYMENT_REVERSED'))`);
    await q.query(`ALTER TABLE purchases DROP CONSTRAINT purchases_status_check`);
    await q.query(`ALTER TABLE purchases ADD CONSTRAINT purchases_status_check CHECK (status IN (
      'PENDING', 'COMPLETED', 'FAILED', 'REFUNDED', 'PARTIALLY_REFUNDED', 'DISPUTED'))`);
    await q.query(`ALTER TABLE refund_requests DROP CONSTRAINT refund_requests_purchase_id_key`);
    await q.query(`CREATE UNIQUE INDEX refund_requests_one_open ON refund_requests (purchase_id) WHERE status IN ('PENDING_REVIEW', 'APPROVED')`);
    await q.query(`CREATE INDEX refund_requests_purchase ON refund_requests (purchase_id, created_at DESC)`);


  }

  async down(): Promise<void> {
    throw new Error('BillingCorrections cannot be reverted: restore from a backup');
  }
}
