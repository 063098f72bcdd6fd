import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Plans billed by Stripe: the account's Stripe customer (kept, so a later checkout reuses it)
 * and its current subscription (cleared when the plan ends). A subscription belongs to one
 * account; webhooks find the account by it.
 */
export class StripeSubscriptions1764000001000 implements MigrationInterface {
  name = 'StripeSubscriptions1764000001000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE accounts ADD COLUMN stripe_customer_id text, ADD COLUMN stripe_subscription_id text`);
    await q.query(`CREATE UNIQUE INDEX accounts_stripe_subscription ON accounts (stripe_subscription_id) WHERE stripe_subscription_id IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX accounts_stripe_subscription`);
    await q.query(`ALTER TABLE accounts DROP COLUMN stripe_customer_id, DROP COLUMN stripe_subscription_id`);
  }
}
