import { MigrationInterface } from 'typeorm';

/**
 * One generation start as a database function, so that an instance can send several starts
 * in one statement (one round trip, one commit): the account row lock and the tier gate, the
 * idempotency key, the debit (ledger_debit: entry, lots, movements, balance event, warnings),
 * the QUEUED job and its event. With a key, the debit, the job and the key record run in a
 * subtransaction: a key taken meanwhile (a concurrent duplicate) undoes only this start.
 *
 * Without p_wait, an account row locked by another transaction is not waited for: the start
 * answers `busy` at once and changes nothing, so a batch never waits on (or deadlocks with)
 * anyone else while it holds its other accounts; the service runs busy starts alone, waiting.
 */
export class StartGenerationFunction1764000002000 implements MigrationInterface {
  name = 'StartGenerationFunction1764000002000';

  async up(): Promise<void> {
    // start_generation and start_generation_apply are in db/functions; kept, empty, for the databases that recorded it.
  }

  async down(): Promise<void> {
    // nothing: the functions are not this migration's any more
  }
}
