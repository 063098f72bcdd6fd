/**
 * A job's receipt, read from the ledger's lot movements — no bookkeeping of its own: the lots its
 * DEBIT entry took from, with what its REFUND entry (if any) gave back to each, in spending order
 * (soonest expiry first; lots that never expire oldest first).
 */
import type { DataSource } from 'typeorm';
import type { LotSource } from '../ledger/ledger.enums';
import type { JobCharge } from './job-charge.type';

export async function jobCharges(db: DataSource, accountId: string, jobId: string): Promise<JobCharge[]> {
  const rows: { lot_id: string; source: LotSource; credits: number; refunded: number }[] = await db.query(
    `SELECT m.lot_id, l.source,
            (-sum(m.amount) FILTER (WHERE e.kind = 'DEBIT'))::int AS credits,
            coalesce(sum(m.amount) FILTER (WHERE e.kind = 'REFUND'), 0)::int AS refunded
       FROM ledger_entries e
       JOIN ledger_lot_movements m ON m.entry_id = e.id
       JOIN credit_lots l ON l.id = m.lot_id
      WHERE e.account_id = $1 AND ((e.job_id = $2 AND e.kind = 'DEBIT') OR (e.job_id = $2 AND e.kind = 'REFUND')) -- the two one-per-job indexes
      GROUP BY m.lot_id, l.source, l.expires_at, l.created_at
      ORDER BY l.expires_at NULLS LAST, l.created_at, m.lot_id`,
    [accountId, jobId],
  );
  return rows.map((r) => ({ lotId: r.lot_id, source: r.source, credits: r.credits, refunded: r.refunded }));
}
