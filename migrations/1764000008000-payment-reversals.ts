import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Money that went back to the buyer outside requestRefund (a refund made in the provider's
 * dashboard, a dispute), one row per reversal:
 * - `amount_cents`: for a refund, what the charge had refunded in all when it was applied (a later
 *   event about the same or an older refund state changes nothing); for a dispute, its amount;
 * - `ledger_mark`: the account's newest ledger entry before the reversal's revocation: what a
 *   dispute took back are the purchase's REVOCATION entries after it;
 * - a dispute is one row per provider dispute id; `outcome` once it closed (WON gives the revoked
 *   credits back, once: the GRANT entries doing it are listed in payment_reversal_grants).
 */
export class PaymentReversals1764000008000 implements MigrationInterface {
  name = 'PaymentReversals1764000008000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE payment_reversals (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        provider text NOT NULL,
        purchase_id uuid NOT NULL REFERENCES purchases (id),
        account_id text NOT NULL REFERENCES accounts (id),
        reason text NOT NULL CHECK (reason IN ('REFUND', 'DISPUTE')),
        provider_ref text NOT NULL,
        amount_cents int NOT NULL CHECK (amount_cents >= 0),
        status_before text NOT NULL,
        credits_revoked int NOT NULL CHECK (credits_revoked >= 0),
        ledger_mark bigint NOT NULL,
        outcome text CHECK (outcome IN ('WON', 'LOST')),
        credits_restored int NOT NULL DEFAULT 0 CHECK (credits_restored >= 0),
        created_at timestamptz NOT NULL,
        closed_at timestamptz,
        CHECK (reason = 'DISPUTE' OR outcome IS NULL),
        CHECK ((outcome IS NULL) = (closed_at IS NULL)),
        CHECK (outcome = 'WON' OR credits_restored = 0)
      )`);
    await q.query(`CREATE UNIQUE INDEX payment_reversals_one_per_dispute ON payment_reversals (provider, provider_ref) WHERE reason = 'DISPUTE'`);
    await q.query(`CREATE INDEX payment_reversals_purchase ON payment_reversals (purchase_id)`);
    await q.query(`
      CREATE TABLE payment_reversal_grants (
        entry_id bigint PRIMARY KEY REFERENCES ledger_entries (id),
        reversal_id uuid NOT NULL REFERENCES payment_reversals (id)
      )`);
    await q.query(`CREATE INDEX payment_reversal_grants_reversal ON payment_reversal_grants (reversal_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE payment_reversal_grants`);
    await q.query(`DROP TABLE payment_reversals`);
  }
}
