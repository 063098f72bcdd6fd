/**
 * The ledger invariants, checked by an independent connection after every test (and, with
 * startAuditor, over and over during it). Every check reads one snapshot (REPEATABLE READ), so
 * a check that compares two tables never sees one of them half a commit ahead.
 *
 * Balances: sum of an account's entries = its available balance = its newest balanceAfter =
 *   the sum of its lots' remainders; no balance below zero; each entry's balanceAfter is the
 *   one before it plus its amount (in ledger order); each entry's sign fits its kind.
 * Lots: every entry's lot movements add up to its amount; every lot's remainder equals its
 *   movements.
 * Idempotency: at most one ledger change per key and caller inside 24 hours (the shortest replay
 *   window: after it a key is a new request); a keyed change has its record
 *   (inside the replay window: the retention sweep deletes older records),
 *   and the record's stored result names that very change; a credit pack is granted at most
 *   once (exactly once when it completed), for its own credits.
 * Reversals: credits come back only from a won dispute, once, as GRANT entries of its purchase,
 *   never more than what was revoked from the purchase since the dispute opened.
 * Jobs and refunds: a job is debited exactly once, for its price; at most one REFUND per job,
 *   never more than its debit, in the debit's account; the refund is exactly what the job's end
 *   owes — all of it when FAILED or CANCELED before it started, the unrendered share when
 *   CANCELED while RUNNING, nothing otherwise — and `refunded` says whether there is one.
 * Allowances: one grant per account and period — every allowance month recorded as granting
 *   credits has exactly one MONTHLY_ALLOWANCE lot of its amount expiring when the month said
 *   (its end, or its tier's rollover after it; never before its end); no paid allowance lot
 *   exists without its month, apart from an upgrade's prorated top-up: at most one lot per
 *   upgrade purchase, of that purchase's credits, made inside an allowance month of the
 *   account and expiring at its end or up to 12 months (a rollover) after it.
 * Auto top-up: an account has at most one automatic purchase in flight, and it is the one its
 *   auto top-up says it waits for (and no request is then open); no UTC month has more automatic
 *   purchases that did not fail than 31, nor than the cap, for months after the settings last changed.
 * Workspaces: each member's spending per UTC month is exactly what the jobs they started from the
 *   pool that month debited and got back; no workspace got sign-up credits; a person's jobs are
 *   started by that person; a workspace's by someone else (a member at the time).
 * Daily spend: account_daily_spend holds, per account and UTC day, exactly the DEBIT and REFUND
 *   totals of the ledger (what Balance.runway reads).
 */
import type { Client, Pool, PoolClient } from 'pg';

type Queryable = Pick<Client | PoolClient, 'query'>;

const CHECKS: { name: string; sql: string; describe: (r: Record<string, unknown>) => string }[] = [
  {
    name: 'balances',
    sql: `
      WITH per AS (
        SELECT account_id, sum(amount)::bigint AS entries_sum,
               (array_agg(balance_after ORDER BY id DESC))[1] AS newest_after
          FROM ledger_entries GROUP BY account_id
      ), lots AS (
        SELECT account_id, sum(remaining)::bigint AS lots_sum FROM credit_lots GROUP BY account_id
      )
      SELECT a.id, a.available, coalesce(per.entries_sum, 0) AS entries_sum, per.newest_after, coalesce(lots.lots_sum, 0) AS lots_sum
        FROM accounts a LEFT JOIN per ON per.account_id = a.id LEFT JOIN lots ON lots.account_id = a.id
       WHERE a.available < 0 OR coalesce(per.entries_sum, 0) <> a.available
          OR coalesce(per.newest_after, 0) <> a.available OR coalesce(lots.lots_sum, 0) <> a.available`,
    describe: (r) => {
      const available = Number(r.available);
      const parts: string[] = [];
      if (available < 0) parts.push(`negative balance ${available}`);
      if (Number(r.entries_sum) !== available) parts.push(`entries sum ${r.entries_sum} != available ${available}`);
      if ((r.newest_after === null ? 0 : Number(r.newest_after)) !== available) parts.push(`newest balanceAfter ${r.newest_after} != available ${available}`);
      if (Number(r.lots_sum) !== available) parts.push(`lots hold ${r.lots_sum} != available ${available}`);
      return `account ${r.id}: ${parts.join('; ')}`;
    },
  },
  {
    name: 'balance chain',
    sql: `
      SELECT * FROM (
        SELECT account_id, id, amount, balance_after,
               coalesce(lag(balance_after) OVER (PARTITION BY account_id ORDER BY id), 0) AS before
          FROM ledger_entries
      ) e WHERE e.before + e.amount <> e.balance_after`,
    describe: (r) => `entry ${r.id} (${r.account_id}): balanceAfter ${r.balance_after} != ${r.before} before + ${r.amount}`,
  },
  {
    name: 'entry signs',
    sql: `
      SELECT id, account_id, kind, amount FROM ledger_entries
       WHERE (kind IN ('GRANT', 'REFUND') AND amount <= 0) OR (kind IN ('DEBIT', 'REVOCATION', 'EXPIRY') AND amount >= 0)`,
    describe: (r) => `entry ${r.id} (${r.account_id}): ${r.kind} of ${r.amount}`,
  },
  {
    name: 'entry movements',
    sql: `
      SELECT e.id, e.amount, coalesce(sum(m.amount), 0)::bigint AS moved
        FROM ledger_entries e LEFT JOIN ledger_lot_movements m ON m.entry_id = e.id
       GROUP BY e.id HAVING coalesce(sum(m.amount), 0) <> e.amount`,
    describe: (r) => `entry ${r.id}: lot movements ${r.moved} != amount ${r.amount}`,
  },
  {
    name: 'lot movements',
    sql: `
      SELECT l.id, l.remaining, coalesce(sum(m.amount), 0)::bigint AS moved
        FROM credit_lots l LEFT JOIN ledger_lot_movements m ON m.lot_id = l.id
       GROUP BY l.id HAVING coalesce(sum(m.amount), 0) <> l.remaining`,
    describe: (r) => `lot ${r.id}: movements ${r.moved} != remaining ${r.remaining}`,
  },
  {
    // A key is scoped to its caller: the actor for operator changes, else the account.
    name: 'one change per key',
    sql: `
      SELECT coalesce(actor, account_id) AS scope, idempotency_key, count(*)::int AS n
        FROM ledger_entries WHERE idempotency_key IS NOT NULL
       GROUP BY 1, 2 HAVING count(*) > 1 AND max(created_at) - min(created_at) < interval '24 hours'`,
    describe: (r) => `key ${r.idempotency_key} (${r.scope}): ${r.n} ledger changes`,
  },
  {
    name: 'keyed change has its record',
    sql: `
      SELECT e.id, e.kind, e.job_id, coalesce(e.actor, e.account_id) AS scope, e.idempotency_key, k.operation, k.response::text AS response
        FROM ledger_entries e
        LEFT JOIN idempotency_keys k ON k.scope = coalesce(e.actor, e.account_id) AND k.key = e.idempotency_key
       WHERE e.idempotency_key IS NOT NULL AND (
             -- inside the replay window (records before the retention horizon may be gone)
             (k.key IS NULL AND e.created_at >= coalesce((SELECT deleted_before FROM retention_horizons WHERE kind = 'idempotency_keys'), '-infinity') + interval '1 second')
          OR (k.operation = 'startGeneration' AND (k.response->>'jobId') IS DISTINCT FROM e.job_id::text)
          OR (k.operation = 'adjustCredits' AND (k.response->>'entryId') IS DISTINCT FROM e.id::text))`,
    describe: (r) =>
      r.operation === null
        ? `entry ${r.id} (${r.kind}) under key ${r.idempotency_key} (${r.scope}) has no idempotency record`
        : `entry ${r.id} (${r.kind}) under key ${r.idempotency_key} (${r.scope}): the ${r.operation} record answers ${r.response}`,
  },
  {
    // Credits a won dispute gave back are not the pack's grant (checked below).
    name: 'pack purchases granted once',
    sql: `
      SELECT p.id, p.account_id, p.status, p.credits, count(e.id)::int AS grants, coalesce(sum(e.amount), 0)::bigint AS granted
        FROM purchases p LEFT JOIN ledger_entries e ON e.purchase_id = p.id AND e.kind = 'GRANT'
             AND NOT EXISTS (SELECT 1 FROM payment_reversal_grants g WHERE g.entry_id = e.id)
       WHERE p.kind = 'CREDIT_PACK'
       GROUP BY p.id
      HAVING count(e.id) > 1
          OR (count(e.id) = 1) <> (p.status IN ('COMPLETED', 'REFUNDED', 'PARTIALLY_REFUNDED', 'DISPUTED'))
          OR (count(e.id) = 1 AND sum(e.amount) <> p.credits)`,
    describe: (r) => `pack purchase ${r.id} (${r.account_id}, ${r.status}, ${r.credits} credits): ${r.grants} grants of ${r.granted} in all`,
  },
  {
    // Money reversed outside the service: only a won dispute gives credits back, once, as GRANT
    // entries of its purchase and account, never more than the purchase's revocations since it opened.
    name: 'won disputes give back what they took',
    sql: `
      WITH given AS (
        SELECT g.reversal_id, count(*)::int AS n, coalesce(sum(e.amount), 0)::bigint AS credits,
               count(*) FILTER (WHERE e.kind <> 'GRANT' OR e.account_id <> r.account_id OR e.purchase_id IS DISTINCT FROM r.purchase_id)::int AS foreign_entries
          FROM payment_reversal_grants g JOIN ledger_entries e ON e.id = g.entry_id JOIN payment_reversals r ON r.id = g.reversal_id
         GROUP BY g.reversal_id
      )
      SELECT r.id, r.purchase_id, r.reason, r.outcome, r.credits_restored, coalesce(given.n, 0) AS grants, coalesce(given.credits, 0) AS given,
             coalesce(given.foreign_entries, 0) AS foreign_entries,
             (SELECT coalesce(-sum(e.amount), 0) FROM ledger_entries e
               WHERE e.account_id = r.account_id AND e.purchase_id = r.purchase_id AND e.kind = 'REVOCATION' AND e.id > r.ledger_mark)::bigint AS revoked
        FROM payment_reversals r LEFT JOIN given ON given.reversal_id = r.id
       WHERE coalesce(given.credits, 0) <> r.credits_restored
          OR coalesce(given.foreign_entries, 0) > 0
          OR (coalesce(given.n, 0) > 0 AND r.outcome IS DISTINCT FROM 'WON')
          OR coalesce(given.credits, 0) > (SELECT coalesce(-sum(e.amount), 0) FROM ledger_entries e
               WHERE e.account_id = r.account_id AND e.purchase_id = r.purchase_id AND e.kind = 'REVOCATION' AND e.id > r.ledger_mark)`,
    describe: (r) =>
      `reversal ${r.id} (${r.reason}, purchase ${r.purchase_id}, outcome ${r.outcome}): ${r.grants} give-back grant(s) of ${r.given}, ` +
      `recorded ${r.credits_restored}, ${r.foreign_entries} not a GRANT of its purchase, ${r.revoked} revoked since it opened`,
  },
  {
    name: 'one debit and at most one refund per job',
    sql: `
      SELECT job_id,
             count(*) FILTER (WHERE kind = 'DEBIT')::int AS debits,
             count(*) FILTER (WHERE kind = 'REFUND')::int AS refunds,
             coalesce(-sum(amount) FILTER (WHERE kind = 'DEBIT'), 0)::bigint AS debited,
             coalesce(sum(amount) FILTER (WHERE kind = 'REFUND'), 0)::bigint AS refunded,
             count(DISTINCT account_id)::int AS accounts
        FROM ledger_entries WHERE job_id IS NOT NULL OR kind IN ('DEBIT', 'REFUND')
       GROUP BY job_id
      HAVING job_id IS NULL AND count(*) FILTER (WHERE kind IN ('DEBIT', 'REFUND')) > 0
          OR count(*) FILTER (WHERE kind = 'DEBIT') <> 1
          OR count(*) FILTER (WHERE kind = 'REFUND') > 1
          OR coalesce(sum(amount) FILTER (WHERE kind = 'REFUND'), 0) > coalesce(-sum(amount) FILTER (WHERE kind = 'DEBIT'), 0)
          OR count(DISTINCT account_id) > 1`,
    describe: (r) =>
      r.job_id === null
        ? `${r.debits} DEBIT and ${r.refunds} REFUND entries without a job`
        : `job ${r.job_id}: ${r.debits} debits (${r.debited}), ${r.refunds} refunds (${r.refunded}), in ${r.accounts} accounts`,
  },
  {
    name: 'jobs match their entries',
    sql: `
      WITH d AS (
        SELECT job_id, -sum(amount)::bigint AS debited, min(account_id) AS account_id
          FROM ledger_entries WHERE kind = 'DEBIT' AND job_id IS NOT NULL GROUP BY job_id
      ), r AS (
        SELECT job_id, count(*)::int AS n, sum(amount)::bigint AS amount FROM ledger_entries WHERE kind = 'REFUND' AND job_id IS NOT NULL GROUP BY job_id
      ), j AS (
        -- What the job's end gives back: all of it (FAILED, or CANCELED before it started), the
        -- unrendered share (CANCELED while RUNNING: floor(credits × (100 − progress) / 100)), or nothing.
        SELECT *, CASE WHEN status = 'FAILED' OR (status = 'CANCELED' AND started_at IS NULL) THEN credits
                       WHEN status = 'CANCELED' THEN (credits * (100 - progress)) / 100 ELSE 0 END AS owed
          FROM generation_jobs
      )
      SELECT coalesce(j.id, d.job_id) AS id, j.account_id, j.status, j.credits, j.progress, j.refunded, j.owed, d.debited, d.account_id AS debit_account,
             coalesce(r.n, 0) AS refunds, coalesce(r.amount, 0) AS refunded_amount
        FROM j FULL JOIN d ON d.job_id = j.id LEFT JOIN r ON r.job_id = coalesce(j.id, d.job_id)
       WHERE j.id IS NULL OR d.job_id IS NULL OR d.debited <> j.credits OR d.account_id <> j.account_id
          OR coalesce(r.amount, 0) <> j.owed
          OR j.refunded <> (coalesce(r.n, 0) > 0)`,
    describe: (r) =>
      r.status === null
        ? `job ${r.id}: debited ${r.debited} in ${r.debit_account}, but no such job exists`
        : `job ${r.id} (${r.account_id}, ${r.status} at ${r.progress}%, ${r.credits} credits, refunded ${r.refunded}, owed ${r.owed}): debited ${r.debited} in ${r.debit_account}, ${r.refunds} refund entries of ${r.refunded_amount}`,
  },
  {
    // Allowance months that granted credits (a month recorded after it ended grants nothing)
    // against the allowance lots of plan periods (those of an upgrade purchase excluded). A
    // single allowance lot outside the plan machinery (no record, no purchase: an operator's
    // or a test fixture's) is tolerated; two for one period end, or a paid one, are not.
    name: 'one allowance grant per account and period',
    sql: `
      WITH upgrades AS (
        SELECT p.id FROM purchases p
         WHERE p.kind = 'PLAN' AND NOT EXISTS (SELECT 1 FROM allowance_grants g WHERE g.purchase_id = p.id)
      ), months AS (
        SELECT account_id, coalesce(lot_expires_at, period_end) AS period_end, count(*)::int AS n, sum(credits)::bigint AS credits
          FROM allowance_grants WHERE credits > 0 AND period_end > created_at
         GROUP BY 1, 2
      ), lots AS (
        SELECT account_id, expires_at, count(*)::int AS n, sum(granted)::bigint AS credits, count(purchase_id)::int AS paid
          FROM credit_lots
         WHERE source = 'MONTHLY_ALLOWANCE' AND (purchase_id IS NULL OR purchase_id NOT IN (SELECT id FROM upgrades))
         GROUP BY 1, 2
      )
      SELECT coalesce(m.account_id, l.account_id) AS account_id, coalesce(m.period_end, l.expires_at) AS period_end,
             coalesce(m.n, 0) AS months, coalesce(m.credits, 0) AS month_credits, coalesce(l.n, 0) AS lots, coalesce(l.credits, 0) AS lot_credits
        FROM months m FULL JOIN lots l ON l.account_id = m.account_id AND l.expires_at = m.period_end
       WHERE (m.n IS NOT NULL AND (m.n <> coalesce(l.n, 0) OR m.credits <> coalesce(l.credits, 0)))
          OR (m.n IS NULL AND (l.n > 1 OR l.paid > 0))`,
    describe: (r) =>
      `account ${r.account_id}, allowance month ending ${new Date(r.period_end as string).toISOString()}: ` +
      `${r.months} granting record(s) of ${r.month_credits} credits, ${r.lots} allowance lot(s) of ${r.lot_credits}`,
  },
  {
    name: 'upgrade top-ups',
    sql: `
      SELECT l.id, l.account_id, l.granted, l.expires_at, p.id AS purchase_id, p.kind, p.credits,
             count(*) OVER (PARTITION BY l.purchase_id)::int AS lots_of_purchase,
             EXISTS (SELECT 1 FROM allowance_grants g WHERE g.account_id = l.account_id AND l.created_at >= g.period_start AND l.created_at < g.period_end
                        AND l.expires_at >= g.period_end AND l.expires_at <= g.period_end + interval '12 months') AS in_a_month
        FROM credit_lots l LEFT JOIN purchases p ON p.id = l.purchase_id
       WHERE l.source = 'MONTHLY_ALLOWANCE' AND l.purchase_id IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM allowance_grants g WHERE g.purchase_id = l.purchase_id)`,
    describe: (r) =>
      `allowance lot ${r.id} (${r.account_id}) of purchase ${r.purchase_id} (${r.kind}, ${r.credits} credits): ` +
      `${r.granted} granted, ${r.lots_of_purchase} lot(s) for that purchase, expiring with an allowance month: ${r.in_a_month}`,
  },
  {
    name: 'auto top-up in flight',
    sql: `
      SELECT coalesce(p.account_id, t.account_id) AS account_id, p.id AS pending, t.purchase_id AS in_flight, t.requested_at,
             count(p.id) OVER (PARTITION BY coalesce(p.account_id, t.account_id))::int AS pending_count
        FROM (SELECT * FROM purchases WHERE automatic AND status = 'PENDING') p
        FULL JOIN (SELECT * FROM auto_top_ups WHERE purchase_id IS NOT NULL) t ON t.purchase_id = p.id`,
    describe: (r) =>
      `account ${r.account_id}: automatic purchase ${r.pending ?? '(none)'} pending (${r.pending_count} in all), auto top-up waits for ${r.in_flight ?? '(none)'}` +
      (r.requested_at ? `, request open since ${new Date(r.requested_at as string).toISOString()}` : ''),
  },
  {
    name: 'auto top-up monthly cap',
    sql: `
      SELECT m.*, to_char(m.month, 'YYYY-MM') AS month_text, t.* FROM (
        SELECT p.account_id, date_trunc('month', p.created_at AT TIME ZONE 'UTC') AS month, count(*)::int AS n
          FROM purchases p WHERE p.automatic AND p.status <> 'FAILED' GROUP BY 1, 2
      ) m LEFT JOIN auto_top_ups t USING (account_id)
       WHERE m.n > 31 OR t.account_id IS NULL OR (m.month > date_trunc('month', t.updated_at AT TIME ZONE 'UTC') AND m.n > t.max_per_month)`,
    describe: (r) => `account ${r.account_id}, ${r.month_text}: ${r.n} automatic purchases, cap ${r.max_per_month ?? '(no settings)'}`,
  },
  {
    name: 'workspace member spending matches their jobs',
    sql: `
      WITH jobs AS (
        SELECT j.account_id AS workspace_id, j.started_by AS account_id, date_trunc('month', j.created_at AT TIME ZONE 'UTC')::date AS month,
               sum(j.credits)::int AS spent,
               coalesce(sum((SELECT sum(e.amount) FROM ledger_entries e WHERE e.job_id = j.id AND e.kind = 'REFUND')), 0)::int AS refunded
          FROM generation_jobs j WHERE j.account_id LIKE 'workspace:%' GROUP BY 1, 2, 3
      )
      SELECT coalesce(j.workspace_id, s.workspace_id) AS workspace_id, coalesce(j.account_id, s.account_id) AS account_id, coalesce(j.month, s.month)::text AS month,
             j.spent AS job_spent, j.refunded AS job_refunded, s.spent, s.refunded
        FROM jobs j FULL JOIN workspace_member_spend s ON s.workspace_id = j.workspace_id AND s.account_id = j.account_id AND s.month = j.month
       WHERE j.spent IS DISTINCT FROM s.spent OR j.refunded IS DISTINCT FROM s.refunded`,
    describe: (r) => `workspace ${r.workspace_id}, member ${r.account_id}, ${r.month}: jobs debited ${r.job_spent} and got back ${r.job_refunded}, the member's spending says ${r.spent} and ${r.refunded}`,
  },
  {
    name: 'workspace holders',
    sql: `
      SELECT 'job' AS what, j.id::text AS id, j.account_id, j.started_by AS detail FROM generation_jobs j
       WHERE (j.account_id LIKE 'workspace:%') = (j.started_by = j.account_id) OR j.started_by LIKE 'workspace:%'
      UNION ALL
      SELECT 'sign-up lot', l.id::text, l.account_id, l.granted::text FROM credit_lots l WHERE l.source = 'SIGNUP_BONUS' AND l.account_id LIKE 'workspace:%'
      UNION ALL
      SELECT 'workspace without its row', a.id, a.id, a.kind FROM accounts a WHERE a.kind = 'WORKSPACE' AND NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.id = a.id)`,
    describe: (r) => `${r.what} ${r.id} of ${r.account_id}: ${r.detail}`,
  },
  {
    // What Balance.runway reads is what the ledger says each account spent and got back each UTC day.
    name: 'daily spend matches the ledger',
    sql: `
      WITH ledger AS (
        SELECT account_id, (created_at AT TIME ZONE 'UTC')::date AS day,
               coalesce(sum(-amount) FILTER (WHERE kind = 'DEBIT'), 0)::int AS spent, coalesce(sum(amount) FILTER (WHERE kind = 'REFUND'), 0)::int AS refunded
          FROM ledger_entries WHERE kind IN ('DEBIT', 'REFUND') GROUP BY 1, 2
      )
      SELECT coalesce(l.account_id, d.account_id) AS account_id, coalesce(l.day, d.day)::text AS day, l.spent AS ledger_spent, l.refunded AS ledger_refunded, d.spent, d.refunded
        FROM ledger l FULL JOIN account_daily_spend d ON d.account_id = l.account_id AND d.day = l.day
       WHERE l.spent IS DISTINCT FROM d.spent OR l.refunded IS DISTINCT FROM d.refunded`,
    describe: (r) => `account ${r.account_id} on ${r.day}: the ledger has ${r.ledger_spent} spent and ${r.ledger_refunded} refunded, account_daily_spend ${r.spent} and ${r.refunded}`,
  },
];

/** Only upgrade lots that break a rule are reported (the query lists them all). */
function upgradeLotBroken(r: Record<string, unknown>): boolean {
  return r.kind !== 'PLAN' || Number(r.lots_of_purchase) > 1 || Number(r.granted) !== Number(r.credits) || r.in_a_month !== true;
}

/** A purchase in flight is broken unless it is its account's only one, matched both ways, with no request open beside it. */
function inFlightBroken(r: Record<string, unknown>): boolean {
  return r.pending === null || r.in_flight === null || Number(r.pending_count) > 1 || r.requested_at !== null;
}

/** Runs every check on this connection, in one read-only snapshot. */
export async function ledgerViolationsOn(c: Queryable): Promise<string[]> {
  const violations: string[] = [];
  await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    for (const check of CHECKS) {
      const { rows } = await c.query(check.sql);
      for (const r of rows) {
        if (check.name === 'upgrade top-ups' && !upgradeLotBroken(r)) continue;
        if (check.name === 'auto top-up in flight' && !inFlightBroken(r)) continue;
        violations.push(`${check.name}: ${check.describe(r)}`);
      }
    }
  } finally {
    await c.query('COMMIT').catch(() => undefined);
  }
  return violations;
}

export async function ledgerViolations(db: Pool): Promise<string[]> {
  const c = await db.connect();
  let broken: Error | undefined;
  // A database going away mid-check fails the check, not the test process.
  const onError = (e: Error) => (broken = e);
  c.on('error', onError);
  try {
    return await ledgerViolationsOn(c);
  } catch (e) {
    broken = e as Error;
    throw e;
  } finally {
    c.off('error', onError);
    c.release(broken);
  }
}

export async function assertLedgerInvariants(db: Pool): Promise<void> {
  const v = await ledgerViolations(db);
  if (v.length) throw new Error(`ledger invariants violated:\n  ${v.slice(0, 20).join('\n  ')}`);
}
