-- Constraint trigger (deferred to commit) on workspace_members: a workspace has exactly one
-- OWNER at every commit — ownership moves by making another member OWNER (the old one steps
-- down in the same transaction), and the last OWNER cannot leave.
CREATE OR REPLACE FUNCTION public.workspace_owner_check()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
DECLARE v_ws text := coalesce(NEW.workspace_id, OLD.workspace_id); v_owners int;
BEGIN
  SELECT count(*) INTO v_owners FROM workspace_members WHERE workspace_id = v_ws AND role = 'OWNER';
  IF v_owners <> 1 THEN
    RAISE EXCEPTION 'workspace % would have % owners', v_ws, v_owners USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $function$
