-- What the service's runtime role may do: every privilege of the group role credits_runtime,
-- whose members (the login role of DATABASE_URL, e.g. credits_app) the service's pool connects
-- as. migrate() applies this file as the owner after the functions and the migrations at every
-- start (src/common/db/migrate.ts), so it is the whole statement of those privileges: everything
-- is revoked and granted again in one transaction, and a new table is covered at the next start.
-- The runtime role owns nothing: only an owner may ALTER TABLE (… DISABLE TRIGGER), TRUNCATE
-- without the privilege, or DROP. See docs/OPERATIONS.md, "Database roles".
DO $grants$
BEGIN
  IF to_regrole('credits_runtime') IS NULL THEN
    BEGIN
      CREATE ROLE credits_runtime NOLOGIN;
    EXCEPTION
      WHEN duplicate_object OR unique_violation THEN NULL; -- created meanwhile (roles are cluster-wide)
      WHEN insufficient_privilege THEN
        -- An owner without CREATEROLE, and nobody created the role: nothing to grant to.
        RAISE WARNING 'role credits_runtime does not exist and % may not create it: no runtime privileges granted', current_user;
        RETURN;
    END;
  END IF;

  REVOKE ALL ON ALL TABLES IN SCHEMA public FROM credits_runtime;
  REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM credits_runtime;
  REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM credits_runtime;

  GRANT USAGE ON SCHEMA public TO credits_runtime;
  GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO credits_runtime;
  -- The ledger and the price books are append-only: read and append, nothing else (TRUNCATE is
  -- never granted; publishing takes its turn with an advisory lock, not a table lock).
  REVOKE UPDATE ON ledger_entries, ledger_lot_movements, price_books FROM credits_runtime;
  -- What migrate() keeps is the owner's to write.
  REVOKE INSERT, UPDATE ON schema_migrations, schema_functions FROM credits_runtime;
  -- The retention sweep (src/common/db/retention.ts) deletes what is past its retention; the
  -- rate limiter (src/common/limits/rate-limits.ts) deletes counters an hour past their window.
  GRANT DELETE ON idempotency_keys, quotes, rate_limits TO credits_runtime;
  -- A member leaving a workspace is a row deleted (workspace_owner_check keeps its one OWNER).
  GRANT DELETE ON workspace_members TO credits_runtime;

  GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO credits_runtime;
  GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO credits_runtime;
END
$grants$;
