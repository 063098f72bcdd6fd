-- Gives a job's debit back to the lots it came from (REFUND entry); a lot that closed since
-- (expired, or its purchase refunded or disputed) takes it back at once. With p_part, only that
-- many credits come back (a stopped job's unrendered share), to the lots the debit took last
-- first (the reverse of the spending order); nothing (no entry) when p_part is 0. A workspace
-- member's job counts back in their spending of the job's month.
CREATE OR REPLACE FUNCTION public.ledger_refund_job(p_account text, p_job uuid, p_description text, p_now timestamp with time zone, p_part integer DEFAULT NULL::integer)
 RETURNS TABLE(ok boolean, balance integer, balance_before integer, threshold integer, account_tier text, out_entry bigint, amount integer)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE v_debit bigint; v_amount int; v_avail int; v_thr int; v_tier text; v_entry bigint; v_before int; lot record;
BEGIN
  SELECT e.id, -e.amount INTO v_debit, v_amount FROM ledger_entries e
   WHERE e.job_id = p_job AND e.kind = 'DEBIT' AND e.account_id = p_account;
  IF NOT FOUND THEN RETURN; END IF;
  IF p_part IS NOT NULL THEN
    IF p_part < 0 OR p_part > v_amount THEN
      RAISE EXCEPTION 'a part of % credits of a debit of %', p_part, v_amount USING ERRCODE = 'check_violation';
    END IF;
    IF p_part = 0 THEN RETURN; END IF;
    v_amount := p_part;
  END IF;
  UPDATE accounts a SET available = a.available + v_amount, updated_at = p_now
   WHERE a.id = p_account
   RETURNING a.available, a.low_credit_threshold, a.tier INTO v_avail, v_thr, v_tier;
  v_before := v_avail - v_amount;
  INSERT INTO ledger_entries (account_id, kind, amount, balance_after, description, job_id, created_at)
  VALUES (p_account, 'REFUND', v_amount, v_avail, p_description, p_job, p_now) RETURNING id INTO v_entry;
  -- Each lot of the debit gets back what it paid, the last taken first, until v_amount is given.
  WITH taken AS (
    SELECT m.lot_id, -m.amount AS paid,
           sum(-m.amount) OVER (ORDER BY l.expires_at DESC NULLS FIRST, l.created_at DESC, l.id DESC) AS upto
      FROM ledger_lot_movements m JOIN credit_lots l ON l.id = m.lot_id
     WHERE m.entry_id = v_debit
  ), back AS (
    SELECT lot_id, LEAST(paid, v_amount - (upto - paid))::int AS amount FROM taken WHERE upto - paid < v_amount
  ), moved AS (
    INSERT INTO ledger_lot_movements (entry_id, lot_id, amount) SELECT v_entry, lot_id, amount FROM back RETURNING lot_id, amount
  )
  UPDATE credit_lots l SET remaining = l.remaining + moved.amount FROM moved WHERE l.id = moved.lot_id;
  PERFORM ledger_balance_event(p_account, v_avail, v_thr, v_before, p_now);
  PERFORM workspace_member_spent(j.account_id, j.started_by, 0, v_amount, j.created_at, p_now)
     FROM generation_jobs j WHERE j.id = p_job AND j.started_by <> j.account_id;
  -- Lots that closed since the debit take back what they were given.
  FOR lot IN
    SELECT l.id, l.purchase_id,
           (l.expires_at IS NOT NULL AND l.expires_at <= p_now) AS expired,
           EXISTS (SELECT 1 FROM purchases p WHERE p.id = l.purchase_id AND p.status IN ('REFUNDED', 'DISPUTED')) AS revoked
      FROM ledger_lot_movements m JOIN credit_lots l ON l.id = m.lot_id
     WHERE m.entry_id = v_entry
  LOOP
    IF lot.revoked THEN
      PERFORM ledger_take_lot(p_account, lot.id, 'REVOCATION', 'Refunded job credits of a refunded purchase are withdrawn', lot.purchase_id, NULL, p_now);
    ELSIF lot.expired THEN
      PERFORM ledger_take_lot(p_account, lot.id, 'EXPIRY', 'Refunded job credits of an expired lot expire', NULL, NULL, p_now);
    END IF;
  END LOOP;
  SELECT a.available INTO v_avail FROM accounts a WHERE a.id = p_account;
  RETURN QUERY SELECT true, v_avail, v_before, v_thr, v_tier, v_entry, v_amount;
END $function$
