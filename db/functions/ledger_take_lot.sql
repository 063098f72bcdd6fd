-- Takes what is left of one lot off the balance (REVOCATION or EXPIRY entry). A revocation never
-- fires a warning.
CREATE OR REPLACE FUNCTION public.ledger_take_lot(p_account text, p_lot uuid, p_kind text, p_description text, p_purchase uuid, p_actor text, p_now timestamp with time zone)
 RETURNS TABLE(balance integer, amount integer, out_entry bigint)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE v_left int; v_avail int; v_thr int; v_entry bigint;
BEGIN
  PERFORM 1 FROM accounts a WHERE a.id = p_account FOR NO KEY UPDATE;
  SELECT l.remaining INTO v_left FROM credit_lots l WHERE l.id = p_lot AND l.account_id = p_account AND l.remaining > 0;
  IF NOT FOUND THEN RETURN; END IF;
  UPDATE accounts a SET available = a.available - v_left, updated_at = p_now WHERE a.id = p_account
    RETURNING a.available, a.low_credit_threshold INTO v_avail, v_thr;
  UPDATE credit_lots l SET remaining = 0 WHERE l.id = p_lot;
  INSERT INTO ledger_entries (account_id, kind, amount, balance_after, description, lot_id, purchase_id, actor, created_at)
  VALUES (p_account, p_kind, -v_left, v_avail, p_description, p_lot, p_purchase, p_actor, p_now) RETURNING id INTO v_entry;
  INSERT INTO ledger_lot_movements (entry_id, lot_id, amount) VALUES (v_entry, p_lot, -v_left);
  -- A revocation was asked for (a refund) or is the buyer's own money going back (a
  -- reversal): no "top up" warning for it. Without a crossing nothing fires; the warnings
  -- re-arm as usual when the balance climbs back above their levels.
  PERFORM ledger_balance_event(p_account, v_avail, v_thr, CASE WHEN p_kind = 'REVOCATION' THEN v_avail ELSE v_avail + v_left END, p_now);
  RETURN QUERY SELECT v_avail, v_left, v_entry;
END $function$
