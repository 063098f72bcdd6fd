-- One generation start of a batch: its idempotency key (a subtransaction), the account row lock
-- (SKIP LOCKED inside a batch), the tier gate, then start_generation_apply.
CREATE OR REPLACE FUNCTION public.start_generation(p_account text, p_credits integer, p_description text, p_job uuid, p_needs text[], p_side integer, p_key text, p_now timestamp with time zone, p_type text, p_settings jsonb, p_prompt text, p_cost_class text, p_version integer, p_quote uuid, p_hash text, p_wait boolean)
 RETURNS TABLE(tier text, allowed boolean, available_now integer, ok boolean, balance integer, threshold integer, queue_class text, job_id uuid, key_taken boolean, busy boolean)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE g record; d record; v_constraint text;
BEGIN
  -- The row lock first, alone: joined to tiers, a lock that waited for a plan change would
  -- re-check the new row against the old tier row and find nothing.
  IF p_wait THEN
    PERFORM 1 FROM accounts a WHERE a.id = p_account FOR UPDATE;
  ELSE
    PERFORM 1 FROM accounts a WHERE a.id = p_account FOR UPDATE SKIP LOCKED;
  END IF;
  IF NOT FOUND THEN
    -- Locked by another transaction (busy), or no such account (no row).
    IF EXISTS (SELECT 1 FROM accounts a WHERE a.id = p_account) THEN
      RETURN QUERY SELECT NULL::text, NULL::boolean, NULL::int, NULL::boolean, NULL::int, NULL::int, NULL::text, NULL::uuid, false, true;
    END IF;
    RETURN;
  END IF;
  SELECT a.tier, a.available, t.queue_class, (t.features @> p_needs AND t.max_resolution >= p_side) AS allowed INTO g
    FROM accounts a JOIN tiers t ON t.code = CASE WHEN a.plan_status = 'PAST_DUE' THEN 'FREE' ELSE a.tier END
   WHERE a.id = p_account;
  IF NOT g.allowed THEN
    RETURN QUERY SELECT g.tier, false, g.available, NULL::boolean, NULL::int, NULL::int, NULL::text, NULL::uuid, false, false;
    RETURN;
  END IF;
  IF p_key IS NULL THEN
    SELECT * INTO d FROM start_generation_apply(p_account, p_credits, p_description, p_job, NULL, p_now, p_type,
      p_settings, p_prompt, p_cost_class, p_version, p_quote, NULL, g.queue_class);
  ELSE
    -- A retry finds its key at once; a concurrent duplicate waits for the first at the key
    -- insert and, once it committed, gives up this start alone.
    IF EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.scope = p_account AND k.key = p_key) THEN
      RETURN QUERY SELECT g.tier, true, g.available, NULL::boolean, NULL::int, NULL::int, NULL::text, NULL::uuid, true, false;
      RETURN;
    END IF;
    BEGIN
      SELECT * INTO d FROM start_generation_apply(p_account, p_credits, p_description, p_job, p_key, p_now, p_type,
        p_settings, p_prompt, p_cost_class, p_version, p_quote, p_hash, g.queue_class);
    EXCEPTION WHEN unique_violation THEN
      GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
      IF v_constraint <> 'idempotency_keys_pkey' THEN RAISE; END IF;
      RETURN QUERY SELECT g.tier, true, g.available, NULL::boolean, NULL::int, NULL::int, NULL::text, NULL::uuid, true, false;
      RETURN;
    END;
  END IF;
  RETURN QUERY SELECT g.tier, true, g.available, d.ok, d.balance, d.threshold,
                      CASE WHEN d.ok THEN g.queue_class END, CASE WHEN d.ok THEN p_job END, false, false;
END $function$
