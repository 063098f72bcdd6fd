/** Lots whose expiry passed lose what they still hold (EXPIRY entries), once each. */
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';

export class ExpiryService {
  constructor(private readonly db: DataSource, private readonly clock: Clock) {}

  /** Expires every due lot; returns how many credits expired. Safe to run on many instances. */
  async expireDue(limit = 1000): Promise<number> {
    const now = this.clock.now();
    const rows = (await this.db.query(
      `SELECT coalesce(sum(t.amount), 0)::int AS expired FROM (
         SELECT id, account_id FROM credit_lots WHERE expires_at <= $1 AND remaining > 0 ORDER BY expires_at LIMIT $2
       ) due, LATERAL ledger_take_lot(due.account_id, due.id, 'EXPIRY', 'Credits expired', NULL, NULL, $1) t`,
      [now, limit],
    )) as { expired: number }[];
    return rows[0]?.expired ?? 0;
  }
}
