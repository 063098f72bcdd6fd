import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Workspaces (issue 15): a workspace is an account of its own (`accounts.kind = 'WORKSPACE'`, id
 * `workspace:<uuid>`, which no token subject may take), so every ledger function serves it as it
 * serves a person. Its members and their roles (exactly one OWNER, checked at commit by a
 * constraint trigger), each member's spending per UTC month (kept by start_generation and
 * ledger_refund_job, read under the workspace row lock for the member's limit), who started
 * each job, and notifications of a workspace copied to its OWNER and ADMINs (a trigger).
 */
export class Workspaces1764000020000 implements MigrationInterface {
  name = 'Workspaces1764000020000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE accounts ADD COLUMN kind text NOT NULL DEFAULT 'PERSON' CHECK (kind IN ('PERSON', 'WORKSPACE'))`);
    await q.query(`ALTER TABLE accounts ADD CONSTRAINT accounts_workspace_id CHECK ((kind = 'WORKSPACE') = (id LIKE 'workspace:%'))`);
    await q.query(`
      CREATE TABLE workspaces (
        id text PRIMARY KEY REFERENCES accounts (id),
        name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
        created_by text NOT NULL REFERENCES accounts (id),
        created_at timestamptz NOT NULL
      )`);
    await q.query(`
      CREATE TABLE workspace_members (
        workspace_id text NOT NULL REFERENCES workspaces (id),
        account_id text NOT NULL REFERENCES accounts (id),
        role text NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'MEMBER')),
        monthly_limit int CHECK (monthly_limit BETWEEN 0 AND 1000000000),
        joined_at timestamptz NOT NULL,
        PRIMARY KEY (workspace_id, account_id)
      )`);
    await q.query(`CREATE INDEX workspace_members_account ON workspace_members (account_id, workspace_id)`);
    await q.query(`CREATE UNIQUE INDEX workspace_members_one_owner ON workspace_members (workspace_id) WHERE role = 'OWNER'`);
    await q.query(`
      CREATE CONSTRAINT TRIGGER workspace_members_owner AFTER INSERT OR UPDATE OR DELETE ON workspace_members
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION workspace_owner_check()`);
    await q.query(`
      CREATE TABLE workspace_member_spend (
        workspace_id text NOT NULL REFERENCES workspaces (id),
        account_id text NOT NULL REFERENCES accounts (id),
        month date NOT NULL CHECK (extract(day FROM month) = 1),
        spent int NOT NULL CHECK (spent >= 0),
        refunded int NOT NULL CHECK (refunded >= 0 AND refunded <= spent),
        warned boolean NOT NULL DEFAULT false,
        PRIMARY KEY (workspace_id, account_id, month)
      )`);
    await q.query(`ALTER TABLE generation_jobs ADD COLUMN started_by text REFERENCES accounts (id)`);
    await q.query(`UPDATE generation_jobs SET started_by = account_id`);
    await q.query(`ALTER TABLE generation_jobs ALTER COLUMN started_by SET NOT NULL`);
    await q.query(`CREATE INDEX generation_jobs_started_by_page ON generation_jobs (started_by, created_at DESC, id DESC)`);
    await q.query(`ALTER TABLE notifications ADD COLUMN workspace_id text REFERENCES workspaces (id)`);
    await q.query(`CREATE TRIGGER notifications_to_managers AFTER INSERT ON notifications FOR EACH ROW WHEN (NEW.workspace_id IS NULL AND NEW.account_id LIKE 'workspace:%')
                   EXECUTE FUNCTION notification_to_managers()`);
    await q.query(`ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check`);
    await q.query(`ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
      'LOW_CREDITS', 'CREDITS_DEPLETED', 'JOB_FINISHED', 'PURCHASE_COMPLETED', 'REFUND_DECIDED', 'PLAN_RENEWED', 'PLAN_ENDED', 'PAYMENT_REVERSED', 'CREDITS_EXPIRING',
      'AUTO_TOP_UP_COMPLETED', 'AUTO_TOP_UP_FAILED', 'WORKSPACE_MEMBER_LIMIT'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM notifications WHERE kind = 'WORKSPACE_MEMBER_LIMIT' OR workspace_id IS NOT NULL OR account_id LIKE 'workspace:%'`);
    await q.query(`ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check`);
    await q.query(`ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
      'LOW_CREDITS', 'CREDITS_DEPLETED', 'JOB_FINISHED', 'PURCHASE_COMPLETED', 'REFUND_DECIDED', 'PLAN_RENEWED', 'PLAN_ENDED', 'PAYMENT_REVERSED', 'CREDITS_EXPIRING',
      'AUTO_TOP_UP_COMPLETED', 'AUTO_TOP_UP_FAILED'))`);
    await q.query(`DROP TRIGGER notifications_to_managers ON notifications`);
    await q.query(`ALTER TABLE notifications DROP COLUMN workspace_id`);
    await q.query(`ALTER TABLE generation_jobs DROP COLUMN started_by`);
    await q.query(`DROP TABLE workspace_member_spend`);
    await q.query(`DROP TABLE workspace_members`);
    await q.query(`DROP TABLE workspaces`);
    await q.query(`ALTER TABLE accounts DROP CONSTRAINT accounts_workspace_id`);
    await q.query(`ALTER TABLE accounts DROP COLUMN kind`);
  }
}
