import { MigrationInterface, QueryRunner } from 'typeorm';

/** Purchases of credit packs and plans, through a payment provider. */
export class Purchases1764000000500 implements MigrationInterface {
  name = 'Purchases1764000000500';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE purchases (
        id uuid PRIMARY KEY,
        account_id text NOT NULL REFERENCES accounts (id),
        kind text NOT NULL CHECK (kind IN ('CREDIT_PACK', 'PLAN')),
        status text NOT NULL CHECK (status IN ('PENDING', 'COMPLETED', 'FAILED', 'REFUNDED', 'PARTIALLY_REFUNDED')),
        pack_code text REFERENCES credit_packs (code),
        tier text REFERENCES tiers (code),
        billing_interval text CHECK (billing_interval IN ('MONTHLY', 'ANNUAL')),
        credits int NOT NULL CHECK (credits >= 0),
        amount_cents int NOT NULL CHECK (amount_cents >= 0),
        currency char(3) NOT NULL,
        provider text NOT NULL,
        provider_ref text,
        checkout_url text,
        failure_reason text,
        created_at timestamptz NOT NULL,
        completed_at timestamptz,
        refundable_until timestamptz,
        CHECK ((kind = 'CREDIT_PACK') = (pack_code IS NOT NULL)),
        CHECK ((status = 'PENDING') OR (status = 'FAILED') OR completed_at IS NOT NULL)
      )`);
    await q.query(`CREATE INDEX purchases_account_page ON purchases (account_id, created_at DESC, id DESC)`);
    await q.query(`CREATE UNIQUE INDEX purchases_provider_ref ON purchases (provider, provider_ref) WHERE provider_ref IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE purchases`);
  }
}
