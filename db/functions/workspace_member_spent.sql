-- Counts a member's spending in the UTC month of the job it belongs to (`p_at`): a start adds
-- `p_spent`, a refund of their job `p_refunded`. Crossing 80 % of the member's monthly limit
-- notifies them once (WORKSPACE_MEMBER_LIMIT); falling back below re-arms it.
CREATE OR REPLACE FUNCTION public.workspace_member_spent(p_workspace text, p_member text, p_spent integer, p_refunded integer, p_at timestamp with time zone, p_now timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE v_month date := date_trunc('month', p_at AT TIME ZONE 'UTC')::date; s record; v_limit int; v_near boolean;
BEGIN
  IF p_spent > 0 THEN
    INSERT INTO workspace_member_spend AS w (workspace_id, account_id, month, spent, refunded)
    VALUES (p_workspace, p_member, v_month, p_spent, p_refunded)
    ON CONFLICT (workspace_id, account_id, month) DO UPDATE SET spent = w.spent + p_spent, refunded = w.refunded + p_refunded
    RETURNING w.spent - w.refunded AS net, w.warned INTO s;
  ELSE -- a refund: its start counted the month's row already
    UPDATE workspace_member_spend w SET refunded = w.refunded + p_refunded
     WHERE w.workspace_id = p_workspace AND w.account_id = p_member AND w.month = v_month
    RETURNING w.spent - w.refunded AS net, w.warned INTO s;
  END IF;
  SELECT m.monthly_limit INTO v_limit FROM workspace_members m WHERE m.workspace_id = p_workspace AND m.account_id = p_member;
  IF v_limit IS NULL OR v_limit = 0 OR v_month <> date_trunc('month', p_now AT TIME ZONE 'UTC')::date THEN RETURN; END IF;
  v_near := s.net::bigint * 100 >= v_limit::bigint * 80;
  IF v_near = s.warned THEN RETURN; END IF;
  UPDATE workspace_member_spend SET warned = v_near WHERE workspace_id = p_workspace AND account_id = p_member AND month = v_month;
  IF v_near THEN
    INSERT INTO notifications (account_id, workspace_id, kind, template, params, created_at)
    VALUES (p_member, p_workspace, 'WORKSPACE_MEMBER_LIMIT', 'workspaceMemberLimit',
            jsonb_build_object('workspace', (SELECT name FROM workspaces WHERE id = p_workspace), 'spent', s.net, 'limit', v_limit), p_now);
  END IF;
END $function$
