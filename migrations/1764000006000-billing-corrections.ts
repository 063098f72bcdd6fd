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

    await q.query(`
      CREATE OR REPLACE FUNCTION ledger_take_lot(p_account text, p_lot uuid, p_kind text, p_description text, p_purchase uuid, p_actor text, p_now timestamptz)
      RETURNS TABLE (balance int, amount int, out_entry bigint)
      LANGUAGE plpgsql AS $$
      #variable_conflict use_column
      DECLARE v_left int; v_avail int; v_thr int; v_entry bigint;
      BEGIN
        PERFORM 1 FROM accounts a WHERE a.id = p_account FOR UPDATE;
        SELECT l.remaining INTO v_left FROM credit_lots l WHERE l.id = p_lot AND l.account_id = p_account AND l.remaining > 0;
        IF NOT FOUND THEN RETURN; END IF;
        UPDATE accounts a SET available = a.available - v_left, updated_at = p_now WHERE a.id = p_account
          RETURNING a.available, a.low_credit_threshold INTO v_avail, v_thr;
        UPDATE credit_lots l SET remaining = 0 WHERE l.id = p_lot;
        INSERT INTO ledger_entries (account_id, kind, amount, balance_after, description, lot_id, purchase_id, actor, created_at)
        VALUES (p_account, p_kind, -v_left, v_avail, p_description, p_lot, p_purchase, p_actor, p_now) RETURNING id INTO v_entry;
        INSERT INTO ledger_lot_movements (entry_id, lot_id, amount) VALUES (v_entry, p_lot, -v_left);
        -- A revocation was asked for (a refund) or is the buyer's own money going back (a
        -- reversal): no "top up" warning for it. Without a crossing nothing fires; the warnings
        -- re-arm as usual when the balance climbs back above their levels.
        PERFORM ledger_balance_event(p_account, v_avail, v_thr, CASE WHEN p_kind = 'REVOCATION' THEN v_avail ELSE v_avail + v_left END, p_now);
        RETURN QUERY SELECT v_avail, v_left, v_entry;
      END $$`);

    await q.query(`
      CREATE OR REPLACE FUNCTION ledger_refund_job(p_account text, p_job uuid, p_description text, p_now timestamptz)
      RETURNS TABLE (ok boolean, balance int, balance_before int, threshold int, account_tier text, out_entry bigint, amount int)
      LANGUAGE plpgsql AS $$
      #variable_conflict use_column
      DECLARE v_debit bigint; v_amount int; v_avail int; v_thr int; v_tier text; v_entry bigint; v_before int; lot record;
      BEGIN
        SELECT e.id, -e.amount INTO v_debit, v_amount FROM ledger_entries e
         WHERE e.job_id = p_job AND e.kind = 'DEBIT' AND e.account_id = p_account;
        IF NOT FOUND THEN RETURN; END IF;
        UPDATE accounts a SET available = a.available + v_amount, updated_at = p_now
         WHERE a.id = p_account
         RETURNING a.available, a.low_credit_threshold, a.tier INTO v_avail, v_thr, v_tier;
        v_before := v_avail - v_amount;
        INSERT INTO ledger_entries (account_id, kind, amount, balance_after, description, job_id, created_at)
        VALUES (p_account, 'REFUND', v_amount, v_avail, p_description, p_job, p_now) RETURNING id INTO v_entry;
        UPDATE credit_lots l SET remaining = l.remaining - m.amount
          FROM ledger_lot_movements m WHERE m.entry_id = v_debit AND l.id = m.lot_id;
        INSERT INTO ledger_lot_movements (entry_id, lot_id, amount)
          SELECT v_entry, m.lot_id, -m.amount FROM ledger_lot_movements m WHERE m.entry_id = v_debit;
        PERFORM ledger_balance_event(p_account, v_avail, v_thr, v_before, p_now);
        -- Lots that closed since the debit take back what they were given.
        FOR lot IN
          SELECT l.id, l.purchase_id,
                 (l.expires_at IS NOT NULL AND l.expires_at <= p_now) AS expired,
                 EXISTS (SELECT 1 FROM purchases p WHERE p.id = l.purchase_id AND p.status IN ('REFUNDED', 'DISPUTED')) AS revoked
            FROM ledger_lot_movements m JOIN credit_lots l ON l.id = m.lot_id
           WHERE m.entry_id = v_entry
        LOOP
          IF lot.revoked THEN
            PERFORM ledger_take_lot(p_account, lot.id, 'REVOCATION', 'Refunded job credits of a refunded purchase are withdrawn', lot.purchase_id, NULL, p_now);
          ELSIF lot.expired THEN
            PERFORM ledger_take_lot(p_account, lot.id, 'EXPIRY', 'Refunded job credits of an expired lot expire', NULL, NULL, p_now);
          END IF;
        END LOOP;
        SELECT a.available INTO v_avail FROM accounts a WHERE a.id = p_account;
        RETURN QUERY SELECT true, v_avail, v_before, v_thr, v_tier, v_entry, v_amount;
      END $$`);
  }

  async down(): Promise<void> {
    throw new Error('BillingCorrections cannot be reverted: restore from a backup');
  }
}
