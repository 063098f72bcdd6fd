import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One plan lifecycle for every payment provider, and money that moves as intents.
 * - accounts: the provider's subscription and customer are provider-neutral columns
 *   (`subscription_ref`, `customer_ref`; were stripe_*); the owners of subscriptions are kept in
 *   `subscription_owners` (was stripe_subscriptions).
 * - payment_intents: every call to a payment provider, recorded (committed) before it is made,
 *   made after commit under a stable idempotency key, and completed under that key; a reconciler
 *   re-drives the ones a crash left open. Calls of one group (one mutation) run in `seq` order.
 * - The sandbox is a subscription provider like Stripe: its own side lives in sandbox_* tables
 *   (its subscriptions, and its payments by idempotency key), so it survives restarts. Paid
 *   sandbox plans from before get a sandbox subscription.
 */
export class PlanLifecycle1764000007000 implements MigrationInterface {
  name = 'PlanLifecycle1764000007000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE accounts RENAME COLUMN stripe_subscription_id TO subscription_ref`);
    await q.query(`ALTER TABLE accounts RENAME COLUMN stripe_customer_id TO customer_ref`);
    await q.query(`ALTER INDEX accounts_stripe_subscription RENAME TO accounts_subscription_ref`);
    await q.query(`ALTER TABLE stripe_subscriptions RENAME TO subscription_owners`);
    await q.query(`ALTER INDEX stripe_subscriptions_account RENAME TO subscription_owners_account`);

    await q.query(`
      CREATE TABLE payment_intents (
        id uuid PRIMARY KEY,
        group_id uuid NOT NULL,
        seq int NOT NULL,
        account_id text NOT NULL REFERENCES accounts (id),
        kind text NOT NULL,
        payload jsonb NOT NULL,
        status text NOT NULL DEFAULT 'OPEN' CHECK (status IN ('OPEN', 'DONE', 'FAILED')),
        result jsonb,
        attempts int NOT NULL DEFAULT 0,
        lease_until timestamptz,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        UNIQUE (group_id, seq)
      )`);
    await q.query(`CREATE INDEX payment_intents_open ON payment_intents (created_at) WHERE status = 'OPEN'`);
    await q.query(`CREATE INDEX payment_intents_account ON payment_intents (account_id, created_at DESC)`);

    await q.query(`
      CREATE TABLE sandbox_subscriptions (
        id text PRIMARY KEY,
        account_id text NOT NULL,
        amount_cents int NOT NULL CHECK (amount_cents >= 0),
        currency text NOT NULL,
        billing_interval text NOT NULL CHECK (billing_interval IN ('MONTHLY', 'ANNUAL')),
        name text NOT NULL,
        period_start timestamptz NOT NULL,
        period_end timestamptz NOT NULL,
        cancel_at_period_end boolean NOT NULL DEFAULT false,
        cancel_at timestamptz,
        status text NOT NULL CHECK (status IN ('ACTIVE', 'PAST_DUE', 'CANCELED')),
        created_at timestamptz NOT NULL
      )`);
    await q.query(`CREATE INDEX sandbox_subscriptions_due ON sandbox_subscriptions (period_end) WHERE status = 'ACTIVE'`);
    await q.query(`
      CREATE TABLE sandbox_payments (
        key text PRIMARY KEY,
        kind text NOT NULL,
        ref text NOT NULL,
        account_id text,
        amount_cents int NOT NULL,
        description text NOT NULL,
        created_at timestamptz NOT NULL
      )`);
    // Paid plans the sandbox billed before it kept subscriptions: one each, at the plan's price.
    await q.query(`
      INSERT INTO sandbox_subscriptions (id, account_id, amount_cents, currency, billing_interval, name, period_start, period_end,
                                         cancel_at_period_end, status, created_at)
      SELECT 'sandbox_sub_' || a.id, a.id,
             CASE WHEN coalesce(a.pending_interval, a.billing_interval) = 'ANNUAL' THEN t.annual_price_cents ELSE t.monthly_price_cents END,
             t.currency, coalesce(a.pending_interval, a.billing_interval), t.name || ' plan', a.current_period_start, a.current_period_end,
             a.cancel_at_period_end, CASE WHEN a.plan_status = 'PAST_DUE' THEN 'PAST_DUE' ELSE 'ACTIVE' END, a.current_period_start
        FROM accounts a JOIN tiers t ON t.code = coalesce(a.pending_tier, a.tier)
       WHERE a.tier <> 'FREE' AND a.subscription_ref IS NULL AND a.current_period_end IS NOT NULL`);
    await q.query(`
      UPDATE accounts SET subscription_ref = 'sandbox_sub_' || id, pending_interval = NULL
       WHERE tier <> 'FREE' AND subscription_ref IS NULL AND current_period_end IS NOT NULL`);
    await q.query(`
      INSERT INTO subscription_owners (subscription_id, account_id, created_at)
      SELECT subscription_ref, id, coalesce(current_period_start, updated_at) FROM accounts WHERE subscription_ref LIKE 'sandbox_sub_%'
      ON CONFLICT DO NOTHING`);
  }

  async down(): Promise<void> {
    throw new Error('PlanLifecycle cannot be reverted: restore from a backup');
  }
}
