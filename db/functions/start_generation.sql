-- One generation start of a batch, as the service decided it (tier gate, price, queue class):
-- the account row lock (SKIP LOCKED inside a batch), a refusal as stale when the account's tier
-- or plan status is no longer the one the gate decided for, then start_generation_apply and,
-- with a key, the idempotency claim, both in a subtransaction undone when the key was taken.
-- A member's start of a workspace is checked against their monthly limit under the workspace
-- row lock (workspace_member_start), so racing starts of one member never pass it.
-- Outcome: debited, short (not enough credits), busy (row locked: run again, waiting), stale
-- (decide again, for the tier and plan status it returns), key_taken (a duplicate committed
-- first: replay it), member_limit (balance: spent this month, threshold: the limit),
-- not_member; no row: no such account.
CREATE OR REPLACE FUNCTION public.start_generation(p_cmd start_command, p_wait boolean)
 RETURNS TABLE(outcome text, balance integer, threshold integer, tier text, plan_status text)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE c start_command := p_cmd; a record; d record; m record;
BEGIN
  IF p_wait THEN
    SELECT x.tier, x.plan_status INTO a FROM accounts x WHERE x.id = c.account FOR NO KEY UPDATE;
  ELSE
    SELECT x.tier, x.plan_status INTO a FROM accounts x WHERE x.id = c.account FOR NO KEY UPDATE SKIP LOCKED;
  END IF;
  IF NOT FOUND THEN
    IF EXISTS (SELECT 1 FROM accounts x WHERE x.id = c.account) THEN
      RETURN QUERY SELECT 'busy'::text, NULL::int, NULL::int, NULL::text, NULL::text;
    END IF;
    RETURN;
  END IF;
  IF a.tier IS DISTINCT FROM c.tier OR a.plan_status IS DISTINCT FROM c.plan_status THEN
    RETURN QUERY SELECT 'stale'::text, NULL::int, NULL::int, a.tier, a.plan_status;
    RETURN;
  END IF;
  IF c.member IS NOT NULL THEN
    SELECT * INTO m FROM workspace_member_start(c.account, c.member, c.credits, c.now);
    IF NOT m.member THEN
      RETURN QUERY SELECT 'not_member'::text, NULL::int, NULL::int, NULL::text, NULL::text;
      RETURN;
    END IF;
    IF NOT m.within THEN
      RETURN QUERY SELECT 'member_limit'::text, m.spent, m.monthly_limit, a.tier, a.plan_status;
      RETURN;
    END IF;
  END IF;
  IF c.key IS NULL THEN
    SELECT * INTO d FROM start_generation_apply(c);
  ELSE
    BEGIN
      SELECT * INTO d FROM start_generation_apply(c);
      IF d.ok AND NOT idempotency_claim(coalesce(c.member, c.account), c.key, 'startGeneration', c.request_hash, c.response, c.now) THEN
        RAISE SQLSTATE 'CRK01';
      END IF;
    EXCEPTION WHEN SQLSTATE 'CRK01' THEN
      RETURN QUERY SELECT 'key_taken'::text, NULL::int, NULL::int, NULL::text, NULL::text;
      RETURN;
    END;
  END IF;
  RETURN QUERY SELECT CASE WHEN d.ok THEN 'debited' ELSE 'short' END, d.balance, d.threshold, a.tier, a.plan_status;
END $function$
