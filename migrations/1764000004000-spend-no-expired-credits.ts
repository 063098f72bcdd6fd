import { MigrationInterface } from 'typeorm';

/**
 * Expired credits are never spent. The sweep expires due lots every few seconds; a debit that
 * comes first now expires the account's due lots itself (EXPIRY entries, under the account row
 * lock it takes anyway) before it checks the balance and spends.
 */
export class SpendNoExpiredCredits1764000004000 implements MigrationInterface {
  name = 'SpendNoExpiredCredits1764000004000';

  async up(): Promise<void> {
    // Its change is in db/functions/ledger_debit.sql; kept, empty, for the databases that recorded it.
  }

  async down(): Promise<void> {
    throw new Error('SpendNoExpiredCredits cannot be reverted: restore from a backup');
  }
}
