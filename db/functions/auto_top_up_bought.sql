-- The automatic purchases that count against an account's monthly cap: those made in the UTC
-- calendar month of p_now that did not fail (completed, in flight, or refunded later).
CREATE OR REPLACE FUNCTION public.auto_top_up_bought(p_account text, p_now timestamp with time zone)
 RETURNS integer
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
  RETURN (SELECT count(*)::int FROM purchases
           WHERE account_id = p_account AND automatic AND status <> 'FAILED'
             AND created_at >= date_trunc('month', p_now AT TIME ZONE 'UTC') AT TIME ZONE 'UTC');
END $function$
