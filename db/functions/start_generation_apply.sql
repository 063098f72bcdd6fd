-- Debits the start (ledger_debit), queues the job with its queue class, links the DEBIT entry to it
-- and sends the job event.
CREATE OR REPLACE FUNCTION public.start_generation_apply(p_account text, p_credits integer, p_description text, p_job uuid, p_key text, p_now timestamp with time zone, p_type text, p_settings jsonb, p_prompt text, p_cost_class text, p_version integer, p_quote uuid, p_hash text, p_queue_class text)
 RETURNS TABLE(ok boolean, balance integer, threshold integer)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE d record;
BEGIN
  SELECT r.ok, r.balance, r.threshold INTO d
    FROM ledger_debit(p_account, p_credits, 'DEBIT', p_description, p_job, NULL, p_key, NULL, p_now) r;
  IF d.ok THEN
    INSERT INTO generation_jobs (id, account_id, status, type, settings, prompt, cost_class, credits, price_book_version,
                                 quote_id, queue_class, queue_rank, created_at)
    VALUES (p_job, p_account, 'QUEUED', p_type, p_settings, p_prompt, p_cost_class, p_credits, p_version, p_quote,
            p_queue_class, CASE p_queue_class WHEN 'INSTANT' THEN 0 WHEN 'FAST' THEN 1 WHEN 'PRIORITY' THEN 2 ELSE 3 END, p_now);
    PERFORM pg_notify('credits_events', json_build_object('type', 'job', 'accountId', p_account, 'jobId', p_job,
      'status', 'QUEUED', 'progress', 0)::text);
    IF p_key IS NOT NULL THEN
      INSERT INTO idempotency_keys (scope, key, operation, request_hash, response, created_at)
      VALUES (p_account, p_key, 'startGeneration', p_hash, jsonb_build_object('jobId', p_job), p_now);
    END IF;
  END IF;
  RETURN QUERY SELECT d.ok, d.balance, d.threshold;
END $function$
