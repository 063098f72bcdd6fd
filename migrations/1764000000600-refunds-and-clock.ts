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

    // ledger_take_lot (REVOCATION or EXPIRY of what is left of a lot): db/functions/ledger_take_lot.sql.

    // The test clock's offset, shared by every instance (only used with TEST_CLOCK=1).
    await q.query(`CREATE TABLE test_clock (id int PRIMARY KEY CHECK (id = 1), offset_ms bigint NOT NULL CHECK (offset_ms >= 0))`);
    await q.query(`INSERT INTO test_clock (id, offset_ms) VALUES (1, 0)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE test_clock`);
    await q.query(`DROP TABLE refund_requests`);
  }
}
