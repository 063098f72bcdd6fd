/**
 * What the service keeps only for a while, deleted by the sweep in bounded batches:
 * - idempotency records older than IDEMPOTENCY_RETENTION_HOURS (at least 24): the replay
 *   window — a retry with the same key inside it replays the first answer, after it runs anew;
 * - quotes expired more than QUOTE_RETENTION_HOURS ago that no job was started from (a job's
 *   quote is kept with the job).
 * Ledger entries, lots, movements, jobs, purchases and notifications are kept for good.
 * `retention_horizons` keeps, per kind, the instant before which rows may have been deleted.
 */
import type { DataSource } from 'typeorm';
import type { Clock } from '../clock';
import { transaction } from './transaction';

const BATCH = 5000;

export interface RetentionRun {
  idempotencyKeys: number;
  quotes: number;
}

export class Retention {
  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly windows: { idempotencyHours: number; quoteHours: number },
  ) {}

  /** One sweep: up to `BATCH` rows of each kind (the next sweep takes the rest). */
  async sweep(): Promise<RetentionRun> {
    const now = this.clock.now().getTime();
    const keysBefore = new Date(now - this.windows.idempotencyHours * 3_600_000);
    const quotesBefore = new Date(now - this.windows.quoteHours * 3_600_000);
    // One transaction: whoever reads sees the horizon moved and the rows before it gone together
    // (the auditor's snapshot never finds a record missing inside the horizon it reads).
    return transaction(this.db, async (tx) => {
      await tx.query(
        `INSERT INTO retention_horizons (kind, deleted_before) VALUES ('idempotency_keys', $1), ('quotes', $2)
         ON CONFLICT (kind) DO UPDATE SET deleted_before = greatest(retention_horizons.deleted_before, excluded.deleted_before)`,
        [keysBefore, quotesBefore],
      );
      const keys = await tx.query(`DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys WHERE created_at < $1 LIMIT ${BATCH}) RETURNING 1`, [keysBefore]);
      const quotes = await tx.query(
        `DELETE FROM quotes q WHERE q.id IN (
           SELECT id FROM quotes x WHERE x.expires_at < $1 AND NOT EXISTS (SELECT 1 FROM generation_jobs j WHERE j.quote_id = x.id) LIMIT ${BATCH}) RETURNING 1`,
        [quotesBefore],
      );
      return { idempotencyKeys: keys.length, quotes: quotes.length };
    });
  }
}
