import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The spine: catalog tables, accounts, credit lots, the immutable ledger, idempotency records.
 * Balances live on the account row (CHECK >= 0); every change is an immutable ledger entry.
 */
export class Foundation1764000000000 implements MigrationInterface {
  name = 'Foundation1764000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE tiers (
        code text PRIMARY KEY CHECK (code IN ('FREE', 'CREATOR', 'PRO', 'MAX')),
        name text NOT NULL,
        rank int NOT NULL UNIQUE,
        monthly_credits int NOT NULL CHECK (monthly_credits >= 0),
        signup_credits int NOT NULL CHECK (signup_credits >= 0),
        monthly_price_cents int NOT NULL CHECK (monthly_price_cents >= 0),
        annual_price_cents int NOT NULL CHECK (annual_price_cents >= 0),
        currency char(3) NOT NULL,
        queue_class text NOT NULL CHECK (queue_class IN ('STANDARD', 'PRIORITY', 'FAST', 'INSTANT')),
        features text[] NOT NULL DEFAULT '{}',
        max_resolution int NOT NULL CHECK (max_resolution > 0),
        character_model_slots int NOT NULL CHECK (character_model_slots >= 0),
        default_low_credit_threshold int NOT NULL CHECK (default_low_credit_threshold BETWEEN 0 AND 1000000)
      )`);
    await q.query(`
      CREATE TABLE credit_packs (
        code text PRIMARY KEY,
        name text NOT NULL,
        credits int NOT NULL CHECK (credits > 0),
        price_cents int NOT NULL CHECK (price_cents >= 0),
        currency char(3) NOT NULL,
        sort_order int NOT NULL DEFAULT 0,
        active boolean NOT NULL DEFAULT true
      )`);
    await q.query(`
      CREATE TABLE generation_models (
        code text PRIMARY KEY,
        name text NOT NULL,
        type text NOT NULL CHECK (type IN ('IMAGE', 'VIDEO')),
        premium boolean NOT NULL DEFAULT false,
        is_default boolean NOT NULL DEFAULT false,
        sort_order int NOT NULL DEFAULT 0,
        active boolean NOT NULL DEFAULT true
      )`);
    await q.query(`CREATE UNIQUE INDEX generation_models_one_default_per_type ON generation_models (type) WHERE is_default`);

    await q.query(`
      CREATE TABLE accounts (
        id text PRIMARY KEY CHECK (char_length(id) BETWEEN 1 AND 128),
        tier text NOT NULL REFERENCES tiers (code),
        billing_interval text CHECK (billing_interval IN ('MONTHLY', 'ANNUAL')),
        plan_status text NOT NULL DEFAULT 'ACTIVE' CHECK (plan_status IN ('ACTIVE', 'CANCELED', 'PAST_DUE')),
        current_period_start timestamptz,
        current_period_end timestamptz,
        cancel_at_period_end boolean NOT NULL DEFAULT false,
        available int NOT NULL DEFAULT 0 CONSTRAINT accounts_available_never_negative CHECK (available >= 0),
        low_credit_threshold int NOT NULL CHECK (low_credit_threshold BETWEEN 0 AND 1000000),
        low_warning_armed boolean NOT NULL DEFAULT true,
        depleted_warning_armed boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
      )`);

    await q.query(`
      CREATE TABLE credit_lots (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        account_id text NOT NULL REFERENCES accounts (id),
        source text NOT NULL CHECK (source IN ('SIGNUP_BONUS', 'MONTHLY_ALLOWANCE', 'PACK_PURCHASE', 'ADJUSTMENT')),
        granted int NOT NULL CHECK (granted > 0),
        remaining int NOT NULL CHECK (remaining >= 0 AND remaining <= granted),
        expires_at timestamptz,
        purchase_id uuid,
        created_at timestamptz NOT NULL
      )`);
    // Spending order: soonest expiry first, never-expiring lots last, oldest first within each.
    // Not partial on remaining > 0: spending then changes no indexed column (HOT updates).
    await q.query(`CREATE INDEX credit_lots_spending_order ON credit_lots (account_id, expires_at ASC NULLS LAST, created_at, id)`);

    await q.query(`
      CREATE TABLE ledger_entries (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_id text NOT NULL REFERENCES accounts (id),
        kind text NOT NULL CHECK (kind IN ('GRANT', 'DEBIT', 'REFUND', 'REVOCATION', 'EXPIRY', 'ADJUSTMENT')),
        amount int NOT NULL CHECK (amount <> 0),
        balance_after int NOT NULL CHECK (balance_after >= 0),
        description text NOT NULL,
        lot_id uuid REFERENCES credit_lots (id),
        job_id uuid,
        purchase_id uuid,
        idempotency_key text,
        actor text,
        created_at timestamptz NOT NULL
      )`);
    await q.query(`CREATE INDEX ledger_entries_account_page ON ledger_entries (account_id, created_at DESC, id DESC)`);
    // Which lots each entry took from or gave to (a debit may span lots).
    await q.query(`
      CREATE TABLE ledger_lot_movements (
        entry_id bigint NOT NULL REFERENCES ledger_entries (id),
        lot_id uuid NOT NULL REFERENCES credit_lots (id),
        amount int NOT NULL CHECK (amount <> 0),
        PRIMARY KEY (entry_id, lot_id)
      )`);
    await q.query(`CREATE INDEX ledger_lot_movements_lot ON ledger_lot_movements (lot_id)`);

    // The ledger is append-only: the database itself refuses UPDATE, DELETE and TRUNCATE.
    for (const table of ['ledger_entries', 'ledger_lot_movements']) {
      await q.query(`CREATE TRIGGER ${table}_immutable BEFORE UPDATE OR DELETE ON ${table}
                     FOR EACH ROW EXECUTE FUNCTION refuse_ledger_change()`);
      await q.query(`CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON ${table}
                     FOR EACH STATEMENT EXECUTE FUNCTION refuse_ledger_change()`);
    }

    // Idempotency records, scoped to the caller (token subject), holding the first result.
    await q.query(`
      CREATE TABLE idempotency_keys (
        scope text NOT NULL,
        key text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
        operation text NOT NULL,
        request_hash text NOT NULL,
        response jsonb NOT NULL,
        created_at timestamptz NOT NULL,
        PRIMARY KEY (scope, key)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE idempotency_keys`);
    await q.query(`DROP TABLE ledger_lot_movements`);
    await q.query(`DROP TABLE ledger_entries`);
    await q.query(`DROP TABLE credit_lots`);
    await q.query(`DROP TABLE accounts`);
    await q.query(`DROP TABLE generation_models`);
    await q.query(`DROP TABLE credit_packs`);
    await q.query(`DROP TABLE tiers`);
  }
}
