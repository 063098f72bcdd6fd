-- Keeps the first outcome under an idempotency key: true when this call claimed the key, false
-- when it was taken (a concurrent duplicate waits here until the first commits or rolls back).
-- The one writer of idempotency_keys: src/common/idempotency/idempotency.ts and start_generation.
CREATE OR REPLACE FUNCTION public.idempotency_claim(p_scope text, p_key text, p_operation text, p_hash text, p_response jsonb, p_now timestamp with time zone)
 RETURNS boolean
 LANGUAGE plpgsql
AS $function$
BEGIN
  INSERT INTO idempotency_keys (scope, key, operation, request_hash, response, created_at)
  VALUES (p_scope, p_key, p_operation, p_hash, p_response, p_now) ON CONFLICT DO NOTHING;
  RETURN FOUND;
END $function$
