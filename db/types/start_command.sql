-- One generation start as the service decided it, field for field the StartCommand of
-- src/modules/generations/start-command.ts: what to debit, the job to queue, the tier and plan
-- status its tier gate decided for, the outcome to keep under its idempotency key, and who
-- starts it: the member of a workspace (whose monthly limit is checked), or NULL for oneself.
CREATE TYPE public.start_command AS (
  account text,
  credits integer,
  description text,
  job uuid,
  type text,
  settings jsonb,
  prompt text,
  cost_class text,
  price_book_version integer,
  quote uuid,
  tier text,
  plan_status text,
  queue_class text,
  queue_rank integer,
  key text,
  request_hash text,
  response jsonb,
  now timestamp with time zone,
  member text
);
