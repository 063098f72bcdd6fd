-- Whether a member may start a generation of `p_credits` from the workspace now: still a member,
-- and within their monthly limit (what they spent this UTC month, net of refunds, plus this
-- start). Called by start_generation with the workspace row locked, so racing starts of one
-- member are decided one after the other.
CREATE OR REPLACE FUNCTION public.workspace_member_start(p_workspace text, p_member text, p_credits integer, p_now timestamp with time zone)
 RETURNS TABLE(member boolean, within boolean, spent integer, monthly_limit integer)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE v_limit int; v_spent int;
BEGIN
  SELECT m.monthly_limit INTO v_limit FROM workspace_members m WHERE m.workspace_id = p_workspace AND m.account_id = p_member;
  IF NOT FOUND THEN
    RETURN QUERY SELECT false, false, 0, NULL::int;
    RETURN;
  END IF;
  SELECT coalesce(sum(s.spent - s.refunded), 0)::int INTO v_spent FROM workspace_member_spend s
   WHERE s.workspace_id = p_workspace AND s.account_id = p_member AND s.month = date_trunc('month', p_now AT TIME ZONE 'UTC')::date;
  RETURN QUERY SELECT true, v_limit IS NULL OR v_spent + p_credits <= v_limit, v_spent, v_limit;
END $function$
