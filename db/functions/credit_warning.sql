-- Keeps a LOW or DEPLETED warning as a notification (template and parameters; the wording is
-- src/modules/notifications/notices.ts) and sends it to the account's subscribers (event_send).
-- Called by ledger_warnings.
CREATE OR REPLACE FUNCTION public.credit_warning(p_account text, p_level text, p_balance integer, p_threshold integer, p_now timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE v_id uuid;
BEGIN
  INSERT INTO notifications (account_id, kind, template, params, created_at)
  VALUES (p_account, CASE WHEN p_level = 'LOW' THEN 'LOW_CREDITS' ELSE 'CREDITS_DEPLETED' END,
          CASE WHEN p_level = 'LOW' THEN 'lowCredits' ELSE 'creditsDepleted' END,
          jsonb_build_object('balance', p_balance, 'threshold', p_threshold), p_now)
  RETURNING id INTO v_id;
  PERFORM event_send(json_build_object(
    'type', 'warning', 'accountId', p_account, 'level', p_level, 'balance', p_balance, 'threshold', p_threshold,
    'notificationId', v_id, 'at', p_now)::text);
END $function$
