-- Decides whether LOW or DEPLETED fires for a balance move (once per crossing) and re-arms them when
-- the balance climbs back.
CREATE OR REPLACE FUNCTION public.ledger_warnings(p_account text, p_before integer, p_after integer, p_now timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE a record; v_cheapest int; v_low boolean; v_dep boolean; v_low_armed boolean; v_dep_armed boolean;
BEGIN
  SELECT low_credit_threshold, low_warning_armed, depleted_warning_armed INTO a FROM accounts WHERE id = p_account;
  SELECT cheapest_credits INTO v_cheapest FROM price_books ORDER BY version DESC LIMIT 1;
  v_low := a.low_warning_armed AND p_before >= a.low_credit_threshold AND p_after < a.low_credit_threshold;
  v_dep := a.depleted_warning_armed AND p_before >= v_cheapest AND p_after < v_cheapest;
  v_low_armed := CASE WHEN p_after > a.low_credit_threshold THEN true WHEN v_low THEN false ELSE a.low_warning_armed END;
  v_dep_armed := CASE WHEN p_after > v_cheapest THEN true WHEN v_dep THEN false ELSE a.depleted_warning_armed END;
  IF v_low_armed <> a.low_warning_armed OR v_dep_armed <> a.depleted_warning_armed THEN
    UPDATE accounts SET low_warning_armed = v_low_armed, depleted_warning_armed = v_dep_armed WHERE id = p_account;
  END IF;
  IF v_dep THEN PERFORM credit_warning(p_account, 'DEPLETED', p_after, v_cheapest, p_now); END IF;
  IF v_low THEN PERFORM credit_warning(p_account, 'LOW', p_after, a.low_credit_threshold, p_now); END IF;
END $function$
