-- Sends a live event, delivered after commit, in commit order, to every instance. With the
-- database set to `credits.events = 'logical'` (src/common/events/event-transport.ts) it is a
-- transactional logical decoding message: a WAL record, decoded at commit by each instance's
-- reader, with no lock at commit; otherwise pg_notify (PostgreSQL takes one server-wide lock
-- for every notifying commit: docs/PERFORMANCE.md, "Events and commits").
CREATE OR REPLACE FUNCTION public.event_send(p_payload text)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
  IF current_setting('credits.events', true) = 'logical' THEN
    PERFORM pg_logical_emit_message(true, 'credits_events', p_payload);
  ELSE
    PERFORM pg_notify('credits_events', p_payload);
  END IF;
END $function$
