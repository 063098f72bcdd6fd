import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Refund requests (one per purchase), revocation and expiry of lots, and the shared test clock.
 */
export class RefundsAndClock1764000000600 implements MigrationInterface {
  name = 'RefundsAndClock1764000000600';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE refund_requests (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        purchase_id uuid NOT NULL UNIQUE REFERENCES purchases (id),
        account_id text NOT NULL REFERENCES accounts (id),
        status text NOT NULL CHECK (status IN ('APPROVED', 'DENIED', 'PENDING_REVIEW')),
        amount_cents int NOT NULL CHECK (amount_cents >= 0),
        credits_revoked int NOT NULL DEFAULT 0 CHECK (credits_revoked >= 0),
        reason text,
        decision_reason text NOT NULL,
        decided_by text,
        provider_ref text,
        created_at timestamptz NOT NULL,
        decided_at timestamptz
      )`);
    await q.query(`CREATE INDEX refund_requests_account_page ON refund_requests (account_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX refund_requests_review ON refund_requests (created_at DESC, id DESC) WHERE status = 'PENDING_REVIEW'`);

    // Takes what is left of one lot off the balance (REVOCATION or EXPIRY). No row when the lot
    // is not the account's or holds nothing.
    await q.query(`
      CREATE FUNCTION ledger_take_lot(p_account text, p_lot uuid, p_kind text, p_description text, p_purchase uuid, p_actor text, p_now timestamptz)
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
        PERFORM ledger_balance_event(p_account, v_avail, v_thr, v_avail + v_left, p_now);
        RETURN QUERY SELECT v_avail, v_left, v_entry;
      END $$`);

    // The test clock's offset, shared by every instance (only used with TEST_CLOCK=1).
    await q.query(`CREATE TABLE test_clock (id int PRIMARY KEY CHECK (id = 1), offset_ms bigint NOT NULL CHECK (offset_ms >= 0))`);
    await q.query(`INSERT INTO test_clock (id, offset_ms) VALUES (1, 0)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE test_clock`);
    await q.query(`DROP FUNCTION ledger_take_lot(text, uuid, text, text, uuid, text, timestamptz)`);
    await q.query(`DROP TABLE refund_requests`);
  }
}
