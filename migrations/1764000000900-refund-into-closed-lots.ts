import { MigrationInterface } from 'typeorm';

/**
 * A job's refund gives its credits back to the lots they came from. When such a lot has
 * expired meanwhile, or its purchase was refunded, the credits given back to it go again at
 * once (EXPIRY or REVOCATION), in the same transaction — they are never spendable.
 */
export class RefundIntoClosedLots1764000000900 implements MigrationInterface {
  name = 'RefundIntoClosedLots1764000000900';

  async up(): Promise<void> {
    // Its change is in db/functions/ledger_refund_job.sql; kept, empty, for the databases that recorded it.
  }

  async down(): Promise<void> {
    throw new Error('RefundIntoClosedLots cannot be reverted: restore from a backup');
  }
}
