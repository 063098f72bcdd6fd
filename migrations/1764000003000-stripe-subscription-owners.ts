import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Every Stripe subscription an account ever had, kept after its plan ends: an invoice Stripe
 * collects late (after the plan ended here, or after the account moved to another subscription)
 * still finds its account, and is refunded rather than lost.
 */
export class StripeSubscriptionOwners1764000003000 implements MigrationInterface {
  name = 'StripeSubscriptionOwners1764000003000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE stripe_subscriptions (
        subscription_id text PRIMARY KEY,
        account_id text NOT NULL REFERENCES accounts (id),
        created_at timestamptz NOT NULL
      )`);
    await q.query(`CREATE INDEX stripe_subscriptions_account ON stripe_subscriptions (account_id)`);
    await q.query(`
      INSERT INTO stripe_subscriptions (subscription_id, account_id, created_at)
      SELECT stripe_subscription_id, id, now() FROM accounts WHERE stripe_subscription_id IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE stripe_subscriptions`);
  }
}
