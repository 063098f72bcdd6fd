-- Asks for an automatic purchase when a change lowered the balance below the account's auto
-- top-up level: enabled, nothing asked or in flight, and the month's cap not reached. Runs under
-- the account row lock (from ledger_balance_event), so racing debits ask once. The purchase is
-- made after commit by whichever instance claims the request (auto-top-up.service.ts), told by
-- the notification sent here; the sweep claims what nobody did.
CREATE OR REPLACE FUNCTION public.auto_top_up_request(p_account text, p_available integer, p_now timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE v_max int;
BEGIN
  SELECT max_per_month INTO v_max FROM auto_top_ups
   WHERE account_id = p_account AND enabled AND requested_at IS NULL AND purchase_id IS NULL AND p_available < below_credits;
  IF NOT FOUND OR auto_top_up_bought(p_account, p_now) >= v_max THEN RETURN; END IF;
  UPDATE auto_top_ups SET requested_at = p_now WHERE account_id = p_account;
  PERFORM event_send(json_build_object('type', 'autoTopUp', 'accountId', p_account)::text);
END $function$
