-- Takes credits from the account's lots in spending order — the lot that expires first, then the
-- oldest — after expiring the lots whose expiry passed; one DEBIT entry, its lot movements, the
-- balance under the row lock. The debit of a generation start (start_generation_apply) and of a
-- negative adjustment.
CREATE OR REPLACE FUNCTION public.ledger_debit(p_account text, p_amount integer, p_kind text, p_description text, p_job uuid, p_purchase uuid, p_key text, p_actor text, p_now timestamp with time zone)
 RETURNS TABLE(ok boolean, balance integer, balance_before integer, threshold integer, account_tier text, out_entry bigint)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE v_avail int; v_thr int; v_tier text; v_entry bigint; v_taken int;
BEGIN
  IF p_amount <= 0 THEN RAISE EXCEPTION 'ledger_debit: amount must be positive, got %', p_amount; END IF;
  -- Lots past their expiry give up what they hold first (the sweep may not have run yet).
  PERFORM ledger_take_lot(p_account, l.id, 'EXPIRY', 'Credits expired', NULL, NULL, p_now)
     FROM credit_lots l
    WHERE l.account_id = p_account AND l.remaining > 0 AND l.expires_at IS NOT NULL AND l.expires_at <= p_now;
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
  PERFORM ledger_balance_event(p_account, v_avail, v_thr, v_avail + p_amount, p_now);
  RETURN QUERY SELECT true, v_avail, v_avail + p_amount, v_thr, v_tier, v_entry;
END $function$
