-- Debits the start (ledger_debit) and, when the credits were there, queues the job with its
-- queue class and who started it, the DEBIT entry linked to it (a member's: with the member as
-- its actor, the scope of its key), counts it in the member's month, and sends the job event.
CREATE OR REPLACE FUNCTION public.start_generation_apply(c start_command)
 RETURNS TABLE(ok boolean, balance integer, threshold integer)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE d record;
BEGIN
  SELECT r.ok, r.balance, r.threshold INTO d
    FROM ledger_debit(c.account, c.credits, 'DEBIT', c.description, c.job, NULL, c.key, c.member, c.now) r;
  IF d.ok THEN
    INSERT INTO generation_jobs (id, account_id, status, type, settings, prompt, cost_class, credits, price_book_version,
                                 quote_id, queue_class, queue_rank, created_at, started_by)
    VALUES (c.job, c.account, 'QUEUED', c.type, c.settings, c.prompt, c.cost_class, c.credits, c.price_book_version,
            c.quote, c.queue_class, c.queue_rank, c.now, coalesce(c.member, c.account));
    IF c.member IS NOT NULL THEN PERFORM workspace_member_spent(c.account, c.member, c.credits, 0, c.now, c.now); END IF;
    PERFORM job_event(c.account, c.job, 'QUEUED', 0);
  END IF;
  RETURN QUERY SELECT d.ok, d.balance, d.threshold;
END $function$
