-- Stores a LOW or DEPLETED warning as a notification and sends it to the account's subscribers
-- (pg_notify). Called by ledger_warnings.
CREATE OR REPLACE FUNCTION public.credit_warning(p_account text, p_level text, p_balance integer, p_threshold integer, p_now timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE v_message text; v_id uuid;
BEGIN
  IF p_level = 'LOW' THEN
    v_message := format('%s %s left, below your warning level of %s. Top up with a credit pack to keep generating.',
                        p_balance, CASE WHEN p_balance = 1 THEN 'credit' ELSE 'credits' END, p_threshold);
  ELSE
    v_message := format('%s %s left: not enough for another generation (the cheapest costs %s). Top up with a credit pack; jobs already running will finish.',
                        p_balance, CASE WHEN p_balance = 1 THEN 'credit' ELSE 'credits' END, p_threshold);
  END IF;
  INSERT INTO notifications (account_id, kind, message, created_at)
  VALUES (p_account, CASE WHEN p_level = 'LOW' THEN 'LOW_CREDITS' ELSE 'CREDITS_DEPLETED' END, v_message, p_now)
  RETURNING id INTO v_id;
  PERFORM pg_notify('credits_events', json_build_object(
    'type', 'warning', 'accountId', p_account, 'level', p_level, 'balance', p_balance, 'threshold', p_threshold,
    'message', v_message, 'notificationId', v_id, 'at', p_now)::text);
END $function$
