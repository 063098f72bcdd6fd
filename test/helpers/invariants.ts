/**
 * The ledger invariants, checked by an independent connection after every test:
 * sum of entries = available = newest balanceAfter; available = sum of lot remainders;
 * no negative balance; every entry's lot movements add up to its amount; every lot's
 * remainder equals its movements; at most one ledger change per idempotency key.
 */
import type { Pool } from 'pg';

export async function ledgerViolations(db: Pool): Promise<string[]> {
  const violations: string[] = [];
  const balances = await db.query(`
    SELECT a.id, a.available,
           coalesce((SELECT sum(amount) FROM ledger_entries e WHERE e.account_id = a.id), 0)::bigint AS entries_sum,
           (SELECT balance_after FROM ledger_entries e WHERE e.account_id = a.id ORDER BY id DESC LIMIT 1) AS newest_after,
           coalesce((SELECT sum(remaining) FROM credit_lots l WHERE l.account_id = a.id), 0)::bigint AS lots_sum
    FROM accounts a`);
  for (const r of balances.rows) {
    const available = Number(r.available);
    if (available < 0) violations.push(`account ${r.id}: negative balance ${available}`);
    if (Number(r.entries_sum) !== available) violations.push(`account ${r.id}: entries sum ${r.entries_sum} != available ${available}`);
    if ((r.newest_after === null ? 0 : Number(r.newest_after)) !== available) {
      violations.push(`account ${r.id}: newest balanceAfter ${r.newest_after} != available ${available}`);
    }
    if (Number(r.lots_sum) !== available) violations.push(`account ${r.id}: lots hold ${r.lots_sum} != available ${available}`);
  }
  const entries = await db.query(`
    SELECT e.id, e.amount, coalesce(sum(m.amount), 0)::bigint AS moved
    FROM ledger_entries e LEFT JOIN ledger_lot_movements m ON m.entry_id = e.id
    GROUP BY e.id HAVING coalesce(sum(m.amount), 0) <> e.amount`);
  for (const r of entries.rows) violations.push(`entry ${r.id}: lot movements ${r.moved} != amount ${r.amount}`);
  const lots = await db.query(`
    SELECT l.id, l.remaining, coalesce(sum(m.amount), 0)::bigint AS moved
    FROM credit_lots l LEFT JOIN ledger_lot_movements m ON m.lot_id = l.id
    GROUP BY l.id HAVING coalesce(sum(m.amount), 0) <> l.remaining`);
  for (const r of lots.rows) violations.push(`lot ${r.id}: movements ${r.moved} != remaining ${r.remaining}`);
  const keys = await db.query(`
    SELECT account_id, coalesce(actor, account_id) AS scope, idempotency_key, count(*)::int AS n
    FROM ledger_entries WHERE idempotency_key IS NOT NULL
    GROUP BY 1, 2, 3 HAVING count(*) > 1`);
  for (const r of keys.rows) violations.push(`key ${r.idempotency_key} (${r.scope}): ${r.n} ledger changes`);
  return violations;
}

export async function assertLedgerInvariants(db: Pool): Promise<void> {
  const v = await ledgerViolations(db);
  if (v.length) throw new Error(`ledger invariants violated:\n  ${v.slice(0, 20).join('\n  ')}`);
}
