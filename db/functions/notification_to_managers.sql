-- Trigger (AFTER INSERT on notifications of a workspace account): the notification reaches the
-- workspace's OWNER and ADMINs — a copy for each, in their own notifications, naming the
-- workspace (each reads and marks it on their own). The workspace keeps its own row.
CREATE OR REPLACE FUNCTION public.notification_to_managers()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  INSERT INTO notifications (account_id, workspace_id, kind, template, params, job_id, purchase_id, refund_request_id, created_at)
  SELECT m.account_id, NEW.account_id, NEW.kind, NEW.template, NEW.params, NEW.job_id, NEW.purchase_id, NEW.refund_request_id, NEW.created_at
    FROM workspace_members m WHERE m.workspace_id = NEW.account_id AND m.role IN ('OWNER', 'ADMIN');
  RETURN NULL;
END $function$
