import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One generation start as a database function, so that an instance can send several starts
 * in one statement (one round trip, one commit): the account row lock and the tier gate, the
 * idempotency key, the debit (ledger_debit: entry, lots, movements, balance event, warnings),
 * the QUEUED job and its event. With a key, the debit, the job and the key record run in a
 * subtransaction: a key taken meanwhile (a concurrent duplicate) undoes only this start.
 *
 * Without p_wait, an account row locked by another transaction is not waited for: the start
 * answers `busy` at once and changes nothing, so a batch never waits on (or deadlocks with)
 * anyone else while it holds its other accounts; the service runs busy starts alone, waiting.
 */
export class StartGenerationFunction1764000002000 implements MigrationInterface {
  name = 'StartGenerationFunction1764000002000';

  async up(q: QueryRunner): Promise<void> {
    // The debit, the job and its event: runs only when the gate passed.
    await q.query(`
      CREATE FUNCTION start_generation_apply(
        p_account text, p_credits int, p_description text, p_job uuid, p_key text, p_now timestamptz,
        p_type text, p_settings jsonb, p_prompt text, p_cost_class text, p_version int, p_quote uuid,
        p_hash text, p_queue_class text)
      RETURNS TABLE (ok boolean, balance int, threshold int)
      LANGUAGE plpgsql AS $$
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
      END $$`);

    await q.query(`
      CREATE FUNCTION start_generation(
        p_account text, p_credits int, p_description text, p_job uuid, p_needs text[], p_side int, p_key text,
        p_now timestamptz, p_type text, p_settings jsonb, p_prompt text, p_cost_class text, p_version int,
        p_quote uuid, p_hash text, p_wait boolean)
      RETURNS TABLE (tier text, allowed boolean, available_now int, ok boolean, balance int, threshold int,
                     queue_class text, job_id uuid, key_taken boolean, busy boolean)
      LANGUAGE plpgsql AS $$
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
      END $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION start_generation(text, int, text, uuid, text[], int, text, timestamptz, text, jsonb, text, text, int, uuid, text, boolean)`);
    await q.query(`DROP FUNCTION start_generation_apply(text, int, text, uuid, text, timestamptz, text, jsonb, text, text, int, uuid, text, text)`);
  }
}
