-- Adds credits as a new lot with its GRANT (or ADJUSTMENT, REFUND …) entry; refuses a balance past
-- 2^31-1. Packs, allowance months, upgrades, sign-up credits, adjustments.
CREATE OR REPLACE FUNCTION public.ledger_grant(p_account text, p_amount integer, p_source text, p_kind text, p_description text, p_expires timestamp with time zone, p_purchase uuid, p_job uuid, p_key text, p_actor text, p_now timestamp with time zone)
 RETURNS TABLE(ok boolean, balance integer, balance_before integer, threshold integer, account_tier text, out_entry bigint, out_lot uuid)
 LANGUAGE plpgsql
AS $function$
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
  PERFORM ledger_balance_event(p_account, v_avail, v_thr, v_avail - p_amount, p_now);
  RETURN QUERY SELECT true, v_avail, v_avail - p_amount, v_thr, v_tier, v_entry, v_lot;
END $function$
