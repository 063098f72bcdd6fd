/**
 * Lots and their expiry: lots whose expiry passed lose what they still hold (EXPIRY entries),
 * once each; lots with credits left are announced 7 days and 1 day before (CREDITS_EXPIRING),
 * once per lot and lead time; the next expiry of an account's balance.
 */
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import { transaction } from '../../common/db/transaction';
import { keepNotice } from '../notifications/notices';

const DAY_MS = 86_400_000;

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

  /**
   * Warns of lots with credits left that expire within a lead time: the most urgent lead that
   * applies and was not sent yet (a lot first seen a day before its expiry gets the 1-day warning
   * only). The lot's row in expiry_warnings and the notification commit together, so on any
   * number of instances each lot and lead is warned once. Lots of one account expiring at the
   * same instant share one notification. Returns the notifications kept.
   */
  async warnDue(limit = 1000): Promise<number> {
    const now = this.clock.now();
    return transaction(this.db, async (tx) => {
      const rows = await tx.query<{ account_id: string; expires_at: Date; lead: number; credits: number }>(
        `WITH due AS (
           SELECT l.id, l.account_id, l.expires_at, l.remaining,
                  CASE WHEN l.expires_at <= $1::timestamptz + interval '1 day' THEN 1 ELSE 7 END AS lead
             FROM credit_lots l
            WHERE l.expires_at > $1::timestamptz AND l.expires_at <= $1::timestamptz + interval '7 days' AND l.remaining > 0
         ), fresh AS (
           SELECT d.* FROM due d
            WHERE NOT EXISTS (SELECT 1 FROM expiry_warnings w WHERE w.lot_id = d.id AND w.lead_days <= d.lead)
            ORDER BY d.expires_at LIMIT $2
         ), marked AS (
           INSERT INTO expiry_warnings (lot_id, lead_days, credits, created_at)
           SELECT id, lead, remaining, $1 FROM fresh
           ON CONFLICT DO NOTHING RETURNING lot_id, lead_days, credits
         )
         SELECT f.account_id, f.expires_at, m.lead_days AS lead, sum(m.credits)::int AS credits
           FROM marked m JOIN fresh f ON f.id = m.lot_id
          GROUP BY f.account_id, f.expires_at, m.lead_days
          ORDER BY f.account_id, f.expires_at`,
        [now, limit],
      );
      for (const r of rows) {
        // The days as the account sees them: 7 or 1, or fewer when the lot was first seen closer to its expiry.
        const days = Math.max(1, Math.min(r.lead, Math.ceil((r.expires_at.getTime() - now.getTime()) / DAY_MS)));
        await keepNotice(tx, r.account_id, { template: 'creditsExpiring', params: { credits: r.credits, expiresAt: r.expires_at.toISOString(), days } }, now);
      }
      return rows.length;
    });
  }

  /** The soonest instant some of the account's credits expire, and how many then; undefined when none will. */
  async nextExpiry(accountId: string): Promise<{ credits: number; expiresAt: Date } | undefined> {
    const [row] = (await this.db.query(
      `SELECT expires_at, sum(remaining)::int AS credits FROM credit_lots
        WHERE account_id = $1 AND remaining > 0 AND expires_at > $2
        GROUP BY expires_at ORDER BY expires_at LIMIT 1`,
      [accountId, this.clock.now()],
    )) as { expires_at: Date; credits: number }[];
    return row && { credits: row.credits, expiresAt: row.expires_at };
  }
}
