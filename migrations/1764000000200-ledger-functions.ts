import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The ledger primitives as database functions, so that a change holds the account row lock
 * only while PostgreSQL itself works (one round trip), never across client round trips.
 *
 * Each function first takes the account row lock with a conditional UPDATE of `available`;
 * its later statements run on fresh snapshots (READ COMMITTED, VOLATILE), so they see every lot
 * change committed before the lock was granted. Each writes the entry, the lots, the lot
 * movements and the balance event (pg_notify, delivered at commit) and returns the balance.
 * Every path that changes lots goes through these functions.
 */
export class LedgerFunctions1764000000200 implements MigrationInterface {
  name = 'LedgerFunctions1764000000200';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION ledger_balance_event(p_account text, p_available int, p_threshold int) RETURNS void
      LANGUAGE sql AS $$
        SELECT pg_notify('credits_events', json_build_object(
          'type', 'balance', 'accountId', p_account, 'available', p_available, 'lowCreditThreshold', p_threshold)::text)
      $$`);

    // Takes p_amount credits in spending order. ok = false (and nothing written) when the
    // balance does not cover it; no row at all when the account does not exist.
    await q.query(`
      CREATE FUNCTION ledger_debit(
        p_account text, p_amount int, p_kind text, p_description text, p_job uuid, p_purchase uuid,
        p_key text, p_actor text, p_now timestamptz)
      RETURNS TABLE (ok boolean, balance int, balance_before int, threshold int, account_tier text, out_entry bigint)
      LANGUAGE plpgsql AS $$
      #variable_conflict use_column
      DECLARE v_avail int; v_thr int; v_tier text; v_entry bigint; v_taken int;
      BEGIN
        IF p_amount <= 0 THEN RAISE EXCEPTION 'ledger_debit: amount must be positive, got %', p_amount; END IF;
        UPDATE accounts a SET available = a.available - p_amount, updated_at = p_now
         WHERE a.id = p_account AND a.available >= p_amount
         RETURNING a.available, a.low_credit_threshold, a.tier INTO v_avail, v_thr, v_tier;
        IF NOT FOUND THEN
          RETURN QUERY SELECT false, a.available, a.available, a.low_credit_threshold, a.tier, NULL::bigint
                         FROM accounts a WHERE a.id = p_account;
          RETURN;
        END IF;
        INSERT INTO ledger_entries (account_id, kind, amount, balance_after, description, job_id, purchase_id,
                                    idempotency_key, actor, created_at)
        VALUES (p_account, p_kind, -p_amount, v_avail, p_description, p_job, p_purchase, p_key, p_actor, p_now)
        RETURNING id INTO v_entry;
        WITH ordered AS (
          SELECT l.id, l.remaining,
                 sum(l.remaining) OVER (ORDER BY l.expires_at ASC NULLS LAST, l.created_at, l.id) AS running
            FROM credit_lots l WHERE l.account_id = p_account AND l.remaining > 0
        ), pick AS (
          SELECT o.id, LEAST(o.remaining, p_amount - (o.running - o.remaining))::int AS take
            FROM ordered o WHERE o.running - o.remaining < p_amount
        ), spent AS (
          UPDATE credit_lots l SET remaining = l.remaining - pick.take FROM pick WHERE l.id = pick.id
          RETURNING pick.id AS lot_id, pick.take
        ), moved AS (
          INSERT INTO ledger_lot_movements (entry_id, lot_id, amount) SELECT v_entry, spent.lot_id, -spent.take FROM spent
          RETURNING amount
        )
        SELECT coalesce(-sum(moved.amount), 0) INTO v_taken FROM moved;
        IF v_taken <> p_amount THEN
          RAISE EXCEPTION 'ledger inconsistency on account %: lots held % of %', p_account, v_taken, p_amount;
        END IF;
        PERFORM ledger_balance_event(p_account, v_avail, v_thr);
        RETURN QUERY SELECT true, v_avail, v_avail + p_amount, v_thr, v_tier, v_entry;
      END $$`);

    // Adds p_amount credits as a new lot. ok = false (nothing written) when the balance would
    // pass 2^31 - 1; no row when the account does not exist.
    await q.query(`
      CREATE FUNCTION ledger_grant(
        p_account text, p_amount int, p_source text, p_kind text, p_description text, p_expires timestamptz,
        p_purchase uuid, p_job uuid, p_key text, p_actor text, p_now timestamptz)
      RETURNS TABLE (ok boolean, balance int, balance_before int, threshold int, account_tier text, out_entry bigint, out_lot uuid)
      LANGUAGE plpgsql AS $$
      #variable_conflict use_column
      DECLARE v_avail int; v_thr int; v_tier text; v_entry bigint; v_lot uuid;
      BEGIN
        IF p_amount <= 0 THEN RAISE EXCEPTION 'ledger_grant: amount must be positive, got %', p_amount; END IF;
        UPDATE accounts a SET available = a.available + p_amount, updated_at = p_now
         WHERE a.id = p_account AND a.available <= 2147483647 - p_amount
         RETURNING a.available, a.low_credit_threshold, a.tier INTO v_avail, v_thr, v_tier;
        IF NOT FOUND THEN
          RETURN QUERY SELECT false, a.available, a.available, a.low_credit_threshold, a.tier, NULL::bigint, NULL::uuid
                         FROM accounts a WHERE a.id = p_account;
          RETURN;
        END IF;
        INSERT INTO credit_lots (account_id, source, granted, remaining, expires_at, purchase_id, created_at)
        VALUES (p_account, p_source, p_amount, p_amount, p_expires, p_purchase, p_now) RETURNING id INTO v_lot;
        INSERT INTO ledger_entries (account_id, kind, amount, balance_after, description, lot_id, job_id, purchase_id,
                                    idempotency_key, actor, created_at)
        VALUES (p_account, p_kind, p_amount, v_avail, p_description, v_lot, p_job, p_purchase, p_key, p_actor, p_now)
        RETURNING id INTO v_entry;
        INSERT INTO ledger_lot_movements (entry_id, lot_id, amount) VALUES (v_entry, v_lot, p_amount);
        PERFORM ledger_balance_event(p_account, v_avail, v_thr);
        RETURN QUERY SELECT true, v_avail, v_avail - p_amount, v_thr, v_tier, v_entry, v_lot;
      END $$`);

    // Gives a job's debit back to the lots it came from, once (a unique index backs it).
    // No row when the job has no debit on this account.
    await q.query(`
      CREATE FUNCTION ledger_refund_job(p_account text, p_job uuid, p_description text, p_now timestamptz)
      RETURNS TABLE (ok boolean, balance int, balance_before int, threshold int, account_tier text, out_entry bigint, amount int)
      LANGUAGE plpgsql AS $$
      #variable_conflict use_column
      DECLARE v_debit bigint; v_amount int; v_avail int; v_thr int; v_tier text; v_entry bigint;
      BEGIN
        SELECT e.id, -e.amount INTO v_debit, v_amount FROM ledger_entries e
         WHERE e.job_id = p_job AND e.kind = 'DEBIT' AND e.account_id = p_account;
        IF NOT FOUND THEN RETURN; END IF;
        UPDATE accounts a SET available = a.available + v_amount, updated_at = p_now
         WHERE a.id = p_account
         RETURNING a.available, a.low_credit_threshold, a.tier INTO v_avail, v_thr, v_tier;
        INSERT INTO ledger_entries (account_id, kind, amount, balance_after, description, job_id, created_at)
        VALUES (p_account, 'REFUND', v_amount, v_avail, p_description, p_job, p_now) RETURNING id INTO v_entry;
        UPDATE credit_lots l SET remaining = l.remaining - m.amount
          FROM ledger_lot_movements m WHERE m.entry_id = v_debit AND l.id = m.lot_id;
        INSERT INTO ledger_lot_movements (entry_id, lot_id, amount)
          SELECT v_entry, m.lot_id, -m.amount FROM ledger_lot_movements m WHERE m.entry_id = v_debit;
        PERFORM ledger_balance_event(p_account, v_avail, v_thr);
        RETURN QUERY SELECT true, v_avail, v_avail - v_amount, v_thr, v_tier, v_entry, v_amount;
      END $$`);

    await q.query(`CREATE UNIQUE INDEX ledger_entries_one_debit_per_job ON ledger_entries (job_id) WHERE kind = 'DEBIT'`);
    await q.query(`CREATE UNIQUE INDEX ledger_entries_one_refund_per_job ON ledger_entries (job_id) WHERE kind = 'REFUND'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX ledger_entries_one_refund_per_job`);
    await q.query(`DROP INDEX ledger_entries_one_debit_per_job`);
    await q.query(`DROP FUNCTION ledger_refund_job(text, uuid, text, timestamptz)`);
    await q.query(`DROP FUNCTION ledger_grant(text, int, text, text, text, timestamptz, uuid, uuid, text, text, timestamptz)`);
    await q.query(`DROP FUNCTION ledger_debit(text, int, text, text, uuid, uuid, text, text, timestamptz)`);
    await q.query(`DROP FUNCTION ledger_balance_event(text, int, int)`);
  }
}
