-- Trigger (AFTER INSERT on ledger_entries, once per statement): each account's spend per UTC day
-- (account_daily_spend, read by Balance.runway): DEBIT entries add to spent, REFUND entries to
-- refunded. The account's row lock, taken by every writer of those entries, orders the upserts.
CREATE OR REPLACE FUNCTION public.ledger_daily_spend()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  INSERT INTO account_daily_spend AS d (account_id, day, spent, refunded)
  SELECT n.account_id, (n.created_at AT TIME ZONE 'UTC')::date,
         coalesce(sum(-n.amount) FILTER (WHERE n.kind = 'DEBIT'), 0),
         coalesce(sum(n.amount) FILTER (WHERE n.kind = 'REFUND'), 0)
    FROM new_entries n
   WHERE n.kind IN ('DEBIT', 'REFUND')
   GROUP BY 1, 2
   ORDER BY 1, 2
  ON CONFLICT (account_id, day) DO UPDATE SET spent = d.spent + EXCLUDED.spent, refunded = d.refunded + EXCLUDED.refunded;
  RETURN NULL;
END $function$
