import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Low-credit warnings and kept notifications.
 *
 * Every balance change decides its warnings in the same transaction (ledger_warnings, called
 * by the ledger functions while they hold the account row lock):
 * - LOW fires once when the balance falls from at or above the account's threshold to below it;
 * - DEPLETED fires once when it falls below the price of the cheapest generation in the
 *   current price book;
 * each re-arms only when the balance climbs back above its level, so a balance hovering at the
 * level does not fire again. A warning is kept as a notification and sent as an event.
 */
export class WarningsAndNotifications1764000000400 implements MigrationInterface {
  name = 'WarningsAndNotifications1764000000400';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE price_books ADD COLUMN cheapest_credits int NOT NULL DEFAULT 1 CHECK (cheapest_credits > 0)`);
    await q.query(`ALTER TABLE price_books ALTER COLUMN cheapest_credits DROP DEFAULT`);

    await q.query(`
      CREATE TABLE notifications (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        account_id text NOT NULL REFERENCES accounts (id),
        kind text NOT NULL CHECK (kind IN ('LOW_CREDITS', 'CREDITS_DEPLETED', 'JOB_FINISHED', 'PURCHASE_COMPLETED', 'REFUND_DECIDED', 'PLAN_RENEWED')),
        message text NOT NULL,
        job_id uuid,
        created_at timestamptz NOT NULL,
        read_at timestamptz
      )`);
    await q.query(`CREATE INDEX notifications_account_page ON notifications (account_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX notifications_account_unread ON notifications (account_id, created_at DESC, id DESC) WHERE read_at IS NULL`);

    await q.query(`
      CREATE FUNCTION credit_warning(p_account text, p_level text, p_balance int, p_threshold int, p_now timestamptz) RETURNS void
      LANGUAGE plpgsql AS $$
      DECLARE v_message text; v_id uuid;
      BEGIN
        IF p_level = 'LOW' THEN
          v_message := format('%s %s left, below your warning level of %s. Top up with a credit pack to keep generating.',
                              p_balance, CASE WHEN p_balance = 1 THEN 'credit' ELSE 'credits' END, p_threshold);
        ELSE
          v_message := format('%s %s left: not enough for another generation (the cheapest costs %s). Top up with a credit pack; jobs already running will finish.',
                              p_balance, CASE WHEN p_balance = 1 THEN 'credit' ELSE 'credits' END, p_threshold);
        END IF;
        INSERT INTO notifications (account_id, kind, message, created_at)
        VALUES (p_account, CASE WHEN p_level = 'LOW' THEN 'LOW_CREDITS' ELSE 'CREDITS_DEPLETED' END, v_message, p_now)
        RETURNING id INTO v_id;
        PERFORM pg_notify('credits_events', json_build_object(
          'type', 'warning', 'accountId', p_account, 'level', p_level, 'balance', p_balance, 'threshold', p_threshold,
          'message', v_message, 'notificationId', v_id, 'at', p_now)::text);
      END $$`);

    await q.query(`
      CREATE FUNCTION ledger_warnings(p_account text, p_before int, p_after int, p_now timestamptz) RETURNS void
      LANGUAGE plpgsql AS $$
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
      END $$`);

    // The balance event now also runs the warnings (every ledger function sends it once per change).
    await q.query(`DROP FUNCTION ledger_balance_event(text, int, int)`);
    await q.query(`
      CREATE FUNCTION ledger_balance_event(p_account text, p_available int, p_threshold int, p_before int, p_now timestamptz) RETURNS void
      LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('credits_events', json_build_object(
          'type', 'balance', 'accountId', p_account, 'available', p_available, 'lowCreditThreshold', p_threshold)::text);
        IF p_available <> p_before THEN PERFORM ledger_warnings(p_account, p_before, p_available, p_now); END IF;
      END $$`);
    await q.query(`
      CREATE OR REPLACE FUNCTION ledger_debit(
        p_account text, p_amount int, p_kind text, p_description text, p_job uuid, p_purchase uuid,
        p_key text, p_actor text, p_now timestamptz)
      RETURNS TABLE (ok boolean, balance int, balance_before int, threshold int, account_tier text, out_entry bigint)
      LANGUAGE plpgsql AS $$
      #variable_conflict use_column
      DECLARE v_avail int; v_thr int; v_tier text; v_entry bigint; v_taken int;
      BEGIN
        IF p_amount <= 0 THEN RAISE EXCEPTION 'ledger_debit: amount must be positive, got %', p_amount; END IF;
        UPDATE accounts a SET available = a.available - p_amount, updated_at = p_now
         WHERE a.id = p_account AND a.available >= p_amount
         RETURNING a.available, a.low_credit_threshold, a.tier INTO v_avail, v_thr, v_tier;
        IF NOT FOUND THEN
          RETURN QUERY SELECT false, a.available, a.available, a.low_credit_threshold, a.tier, NULL::bigint
                         FROM accounts a WHERE a.id = p_account;
          RETURN;
        END IF;
        INSERT INTO ledger_entries (account_id, kind, amount, balance_after, description, job_id, purchase_id,
                                    idempotency_key, actor, created_at)
        VALUES (p_account, p_kind, -p_amount, v_avail, p_description, p_job, p_purchase, p_key, p_actor, p_now)
        RETURNING id INTO v_entry;
        WITH ordered AS (
          SELECT l.id, l.remaining,
                 sum(l.remaining) OVER (ORDER BY l.expires_at ASC NULLS LAST, l.created_at, l.id) AS running
            FROM credit_lots l WHERE l.account_id = p_account AND l.remaining > 0
        ), pick AS (
          SELECT o.id, LEAST(o.remaining, p_amount - (o.running - o.remaining))::int AS take
            FROM ordered o WHERE o.running - o.remaining < p_amount
        ), spent AS (
          UPDATE credit_lots l SET remaining = l.remaining - pick.take FROM pick WHERE l.id = pick.id
          RETURNING pick.id AS lot_id, pick.take
        ), moved AS (
          INSERT INTO ledger_lot_movements (entry_id, lot_id, amount) SELECT v_entry, spent.lot_id, -spent.take FROM spent
          RETURNING amount
        )
        SELECT coalesce(-sum(moved.amount), 0) INTO v_taken FROM moved;
        IF v_taken <> p_amount THEN
          RAISE EXCEPTION 'ledger inconsistency on account %: lots held % of %', p_account, v_taken, p_amount;
        END IF;
        PERFORM ledger_balance_event(p_account, v_avail, v_thr, v_avail + p_amount, p_now);
        RETURN QUERY SELECT true, v_avail, v_avail + p_amount, v_thr, v_tier, v_entry;
      END $$`);
    await q.query(`
      CREATE OR REPLACE FUNCTION ledger_grant(
        p_account text, p_amount int, p_source text, p_kind text, p_description text, p_expires timestamptz,
        p_purchase uuid, p_job uuid, p_key text, p_actor text, p_now timestamptz)
      RETURNS TABLE (ok boolean, balance int, balance_before int, threshold int, account_tier text, out_entry bigint, out_lot uuid)
      LANGUAGE plpgsql AS $$
      #variable_conflict use_column
      DECLARE v_avail int; v_thr int; v_tier text; v_entry bigint; v_lot uuid;
      BEGIN
        IF p_amount <= 0 THEN RAISE EXCEPTION 'ledger_grant: amount must be positive, got %', p_amount; END IF;
        UPDATE accounts a SET available = a.available + p_amount, updated_at = p_now
         WHERE a.id = p_account AND a.available <= 2147483647 - p_amount
         RETURNING a.available, a.low_credit_threshold, a.tier INTO v_avail, v_thr, v_tier;
        IF NOT FOUND THEN
          RETURN QUERY SELECT false, a.available, a.available, a.low_credit_threshold, a.tier, NULL::bigint, NULL::uuid
                         FROM accounts a WHERE a.id = p_account;
          RETURN;
        END IF;
        INSERT INTO credit_lots (account_id, source, granted, remaining, expires_at, purchase_id, created_at)
        VALUES (p_account, p_source, p_amount, p_amount, p_expires, p_purchase, p_now) RETURNING id INTO v_lot;
        INSERT INTO ledger_entries (account_id, kind, amount, balance_after, description, lot_id, job_id, purchase_id,
                                    idempotency_key, actor, created_at)
        VALUES (p_account, p_kind, p_amount, v_avail, p_description, v_lot, p_job, p_purchase, p_key, p_actor, p_now)
        RETURNING id INTO v_entry;
        INSERT INTO ledger_lot_movements (entry_id, lot_id, amount) VALUES (v_entry, v_lot, p_amount);
        PERFORM ledger_balance_event(p_account, v_avail, v_thr, v_avail - p_amount, p_now);
        RETURN QUERY SELECT true, v_avail, v_avail - p_amount, v_thr, v_tier, v_entry, v_lot;
      END $$`);
    await q.query(`
      CREATE OR REPLACE FUNCTION ledger_refund_job(p_account text, p_job uuid, p_description text, p_now timestamptz)
      RETURNS TABLE (ok boolean, balance int, balance_before int, threshold int, account_tier text, out_entry bigint, amount int)
      LANGUAGE plpgsql AS $$
      #variable_conflict use_column
      DECLARE v_debit bigint; v_amount int; v_avail int; v_thr int; v_tier text; v_entry bigint;
      BEGIN
        SELECT e.id, -e.amount INTO v_debit, v_amount FROM ledger_entries e
         WHERE e.job_id = p_job AND e.kind = 'DEBIT' AND e.account_id = p_account;
        IF NOT FOUND THEN RETURN; END IF;
        UPDATE accounts a SET available = a.available + v_amount, updated_at = p_now
         WHERE a.id = p_account
         RETURNING a.available, a.low_credit_threshold, a.tier INTO v_avail, v_thr, v_tier;
        INSERT INTO ledger_entries (account_id, kind, amount, balance_after, description, job_id, created_at)
        VALUES (p_account, 'REFUND', v_amount, v_avail, p_description, p_job, p_now) RETURNING id INTO v_entry;
        UPDATE credit_lots l SET remaining = l.remaining - m.amount
          FROM ledger_lot_movements m WHERE m.entry_id = v_debit AND l.id = m.lot_id;
        INSERT INTO ledger_lot_movements (entry_id, lot_id, amount)
          SELECT v_entry, m.lot_id, -m.amount FROM ledger_lot_movements m WHERE m.entry_id = v_debit;
        PERFORM ledger_balance_event(p_account, v_avail, v_thr, v_avail - v_amount, p_now);
        RETURN QUERY SELECT true, v_avail, v_avail - v_amount, v_thr, v_tier, v_entry, v_amount;
      END $$`);
  }

  async down(): Promise<void> {
    throw new Error('WarningsAndNotifications cannot be reverted: restore from a backup');
  }
}
