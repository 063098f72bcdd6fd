import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Low-credit warnings and kept notifications.
 *
 * Every balance change decides its warnings in the same transaction (ledger_warnings, called
 * by the ledger functions while they hold the account row lock):
 * - LOW fires once when the balance falls from at or above the account's threshold to below it;
 * - DEPLETED fires once when it falls below the price of the cheapest generation in the
 *   current price book;
 * each re-arms only when the balance climbs back above its level, so a balance hovering at the
 * level does not fire again. A warning is kept as a notification and sent as an event.
 */
export class WarningsAndNotifications1764000000400 implements MigrationInterface {
  name = 'WarningsAndNotifications1764000000400';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE price_books ADD COLUMN cheapest_credits int NOT NULL DEFAULT 1 CHECK (cheapest_credits > 0)`);
    await q.query(`ALTER TABLE price_books ALTER COLUMN cheapest_credits DROP DEFAULT`);

    await q.query(`
      CREATE TABLE notifications (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        account_id text NOT NULL REFERENCES accounts (id),
        kind text NOT NULL CHECK (kind IN ('LOW_CREDITS', 'CREDITS_DEPLETED', 'JOB_FINISHED', 'PURCHASE_COMPLETED', 'REFUND_DECIDED', 'PLAN_RENEWED')),
        message text NOT NULL,
        job_id uuid,
        created_at timestamptz NOT NULL,
        read_at timestamptz
      )`);
    await q.query(`CREATE INDEX notifications_account_page ON notifications (account_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX notifications_account_unread ON notifications (account_id, created_at DESC, id DESC) WHERE read_at IS NULL`);



    // The warnings (ledger_warnings, credit_warning, and ledger_balance_event running them): db/functions.
  }

  async down(): Promise<void> {
    throw new Error('WarningsAndNotifications cannot be reverted: restore from a backup');
  }
}
