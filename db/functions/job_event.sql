-- The job event (JobUpdatedEvent of src/common/events/events.ts), sent at commit to the
-- account's subscribers: the one place its shape is built.
CREATE OR REPLACE FUNCTION public.job_event(p_account text, p_job uuid, p_status text, p_progress integer)
 RETURNS void
 LANGUAGE sql
AS $function$
  SELECT event_send(json_build_object('type', 'job', 'accountId', p_account, 'jobId', p_job,
    'status', p_status, 'progress', p_progress)::text);
$function$
