-- Trigger (AFTER INSERT on notifications): tells the account's subscribers a notification was
-- kept (event_send; delivered after commit). Every writer of notifications gets it alike.
CREATE OR REPLACE FUNCTION public.notification_added()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  PERFORM event_send(json_build_object(
    'type', 'notification', 'accountId', NEW.account_id, 'notificationId', NEW.id)::text);
  RETURN NULL;
END $function$
