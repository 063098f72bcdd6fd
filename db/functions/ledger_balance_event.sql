-- Sends the account's new balance to its subscribers and, when the balance moved, runs
-- ledger_warnings; when it fell, asks for an auto top-up if one is due. Called once by every
-- ledger function, under the account row lock.
CREATE OR REPLACE FUNCTION public.ledger_balance_event(p_account text, p_available integer, p_threshold integer, p_before integer, p_now timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
  PERFORM event_send(json_build_object(
    'type', 'balance', 'accountId', p_account, 'available', p_available, 'lowCreditThreshold', p_threshold)::text);
  IF p_available <> p_before THEN PERFORM ledger_warnings(p_account, p_before, p_available, p_now); END IF;
  IF p_available < p_before THEN PERFORM auto_top_up_request(p_account, p_available, p_now); END IF;
END $function$
