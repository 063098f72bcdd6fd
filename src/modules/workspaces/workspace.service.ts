/**
 * Workspaces: shared credit pools. A workspace is an account of its own (`workspace:<uuid>`,
 * accounts.kind WORKSPACE), opened on FREE with no sign-up credits, so every ledger function,
 * plan, pack, refund and auto top-up serves it as it serves a person. Its members have roles —
 * exactly one OWNER (the database checks it at commit), ADMINs, MEMBERs — and may have a monthly
 * limit, enforced by start_generation under the workspace row lock.
 *
 * Who may do what (`access`): any member may generate from the pool and read it; only the OWNER
 * and ADMINs buy, change the plan, ask for refunds and manage members. A non-member is answered
 * as for an id that does not exist. Membership changes of one workspace take its row lock, one
 * after the other; a member removed loses access at once (their open subscriptions end on the
 * `membership` event sent in the removal's transaction).
 */
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import { transaction, type Tx } from '../../common/db/transaction';
import { publishInTx } from '../../common/events/events';
import { UserErrorCode } from '../../common/errors/user-error-code.enum';
import { keyed, keyFor } from '../../common/idempotency/idempotency';
import { isWorkspaceId, WORKSPACE_ID_PREFIX } from '../../common/ids';
import { TierCode } from '../catalog/catalog.enums';
import type { CatalogService } from '../catalog/catalog.service';
import type { AccountService } from '../accounts/account.service';
import { WorkspaceRole, type MemberRow, type WorkspaceRow } from './workspace.type';

export type Need = 'member' | 'manager';

/** Why access was refused: not a member (answered as an unknown id), or a MEMBER asking what only managers may. */
export type AccessRefusal = 'NOT_FOUND' | 'FORBIDDEN';

export interface WorkspaceError {
  code: UserErrorCode;
  message: string;
  field?: string[];
}

export interface MemberOutcome {
  member?: MemberRow;
  workspaceId?: string;
  error?: WorkspaceError;
  forbidden?: string;
}

const NOT_FOUND: WorkspaceError = { code: UserErrorCode.NOT_FOUND, message: 'No workspace of yours has this id', field: ['input', 'workspaceId'] };
export const isManager = (role: WorkspaceRole): boolean => role === WorkspaceRole.OWNER || role === WorkspaceRole.ADMIN;

/** SQL for a member row with what they spent this UTC month, net of refunds ($1: the workspace; `m`: workspace_members). */
const MEMBER_COLUMNS = `m.*, coalesce((SELECT s.spent - s.refunded FROM workspace_member_spend s
   WHERE s.workspace_id = m.workspace_id AND s.account_id = m.account_id AND s.month = date_trunc('month', $2::timestamptz AT TIME ZONE 'UTC')::date), 0)::int AS spent_this_month`;

/** How long a member's right to generate is remembered without a word from the event bus. */
const REMEMBER_MS = 5_000;
const MAX_REMEMBERED = 100_000;

export class WorkspaceService {
  /** Memberships this instance saw lately, by `workspace|member` (access). */
  private readonly remembered = new Map<string, { role: WorkspaceRole; until: number }>();

  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly catalog: CatalogService,
    private readonly accounts: AccountService,
  ) {}

  /** The caller's membership of the workspace, or undefined (not a member, or no such workspace). */
  async membership(caller: string, workspaceId: string, q: Pick<Tx, 'query'> = this.db as never): Promise<MemberRow | undefined> {
    if (!isWorkspaceId(workspaceId)) return undefined;
    const [m] = (await q.query(`SELECT ${MEMBER_COLUMNS} FROM workspace_members m WHERE m.workspace_id = $1 AND m.account_id = $3`, [
      workspaceId, this.clock.now(), caller,
    ])) as MemberRow[];
    return m;
  }

  /**
   * May the caller act on the workspace as `need` asks? Its role, or why not. A member's right to
   * generate and read (`member`) is remembered on this instance — forgotten on every instance at
   * the commit of any change to it (`forget`, on the membership event), and after a few seconds
   * anyway — so a start from the pool costs no extra read; start_generation checks the membership
   * again under the workspace row lock. What only managers may do is always read afresh.
   */
  async access(caller: string, workspaceId: string, need: Need): Promise<{ role: WorkspaceRole } | { refusal: AccessRefusal }> {
    const key = `${workspaceId}|${caller}`;
    const known = need === 'member' ? this.remembered.get(key) : undefined;
    if (known && known.until > Date.now()) return { role: known.role };
    const m = await this.membership(caller, workspaceId);
    if (!m) return { refusal: 'NOT_FOUND' };
    this.remember(key, m.role);
    if (need === 'manager' && !isManager(m.role)) return { refusal: 'FORBIDDEN' };
    return { role: m.role };
  }

  /** A membership changed (on any instance): what this one remembered of it goes. */
  forget(workspaceId: string, member: string): void {
    this.remembered.delete(`${workspaceId}|${member}`);
  }

  private remember(key: string, role: WorkspaceRole): void {
    if (this.remembered.size >= MAX_REMEMBERED) this.remembered.clear();
    this.remembered.set(key, { role, until: Date.now() + REMEMBER_MS });
  }

  async get(workspaceId: string): Promise<WorkspaceRow | undefined> {
    if (!isWorkspaceId(workspaceId)) return undefined;
    const [w] = (await this.db.query('SELECT * FROM workspaces WHERE id = $1', [workspaceId])) as WorkspaceRow[];
    return w;
  }

  /** The workspaces the caller is a member of, oldest membership first, with their role. */
  async listFor(caller: string): Promise<(WorkspaceRow & { role: WorkspaceRole })[]> {
    return (await this.db.query(
      `SELECT w.*, m.role FROM workspace_members m JOIN workspaces w ON w.id = m.workspace_id WHERE m.account_id = $1 ORDER BY m.joined_at, w.id`,
      [caller],
    )) as (WorkspaceRow & { role: WorkspaceRole })[];
  }

  /** Opens a workspace on FREE, with no credits, and the caller as its OWNER. Idempotent with a key. */
  async create(caller: string, input: { name: string; idempotencyKey?: string | null }): Promise<{ workspaceId?: string; error?: WorkspaceError }> {
    const free = await this.catalog.tier(TierCode.FREE);
    const key = keyFor(caller, input.idempotencyKey, 'createWorkspace', { name: input.name });
    return keyed<{ workspaceId: string }, { workspaceId?: string; error?: WorkspaceError }>(this.db, key, () => this.clock.now(), {
      work: async (tx) => {
        const id = `${WORKSPACE_ID_PREFIX}${randomUUID()}`;
        const now = this.clock.now();
        await tx.query(
          `INSERT INTO accounts (id, kind, tier, plan_status, available, low_credit_threshold, created_at, updated_at)
           VALUES ($1, 'WORKSPACE', $2, 'ACTIVE', 0, $3, $4, $4)`,
          [id, free.code, free.defaultLowCreditThreshold, now],
        );
        if (free.monthlyCredits > 0) await this.accounts.freeMonth?.(tx, id, free, now);
        await tx.query('INSERT INTO workspaces (id, name, created_by, created_at) VALUES ($1, $2, $3, $4)', [id, input.name.trim(), caller, now]);
        await tx.query(`INSERT INTO workspace_members (workspace_id, account_id, role, joined_at) VALUES ($1, $2, 'OWNER', $3)`, [id, caller, now]);
        return { workspaceId: id };
      },
      answer: async (fresh) => fresh,
      replay: async (kept) => kept,
    });
  }

  /**
   * Adds a member or changes one (role, limit). The OWNER and ADMINs manage; only the OWNER makes
   * another member OWNER, and then steps down to ADMIN in the same transaction (there is always
   * exactly one). An ADMIN cannot change the OWNER; the OWNER cannot step down but by that transfer.
   */
  async setMember(caller: string, input: { workspaceId: string; accountId: string; role: WorkspaceRole; monthlyLimit?: number | null }): Promise<MemberOutcome> {
    if (input.accountId.startsWith(WORKSPACE_ID_PREFIX)) {
      return { error: { code: UserErrorCode.INVALID_INPUT, message: 'A workspace cannot be a member of a workspace', field: ['input', 'accountId'] } };
    }
    const target = input.accountId;
    // Refused callers change nothing, not even the target's account: checked before it is opened.
    const allowed = await this.access(caller, input.workspaceId, 'manager');
    if ('refusal' in allowed) {
      return allowed.refusal === 'NOT_FOUND' ? { error: NOT_FOUND } : { forbidden: 'Only the OWNER or an ADMIN of the workspace manages its members' };
    }
    if (target !== caller) await this.accounts.ensureOpen(target); // a person not seen yet: their account opens as on their first request
    return transaction(this.db, async (tx) => {
      const me = await this.locked(tx, caller, input.workspaceId);
      if (!me) return { error: NOT_FOUND };
      if (!isManager(me.role)) return { forbidden: 'Only the OWNER or an ADMIN of the workspace manages its members' };
      const now = this.clock.now();
      const [current] = (await tx.query('SELECT * FROM workspace_members WHERE workspace_id = $1 AND account_id = $2', [input.workspaceId, target])) as MemberRow[];
      if (current?.role === WorkspaceRole.OWNER && me.role !== WorkspaceRole.OWNER) return { forbidden: 'Only the OWNER changes the OWNER' };
      if (input.role === WorkspaceRole.OWNER && me.role !== WorkspaceRole.OWNER) return { forbidden: 'Only the OWNER makes another member OWNER' };
      if (current?.role === WorkspaceRole.OWNER && input.role !== WorkspaceRole.OWNER) {
        return { error: { code: UserErrorCode.INVALID_STATE, message: 'A workspace always has one OWNER: make another member OWNER to step down', field: ['input', 'role'] } };
      }
      if (input.role === WorkspaceRole.OWNER && target !== caller) {
        // The transfer: the OWNER steps down first (the one-OWNER index), the new one is made below.
        await tx.query(`UPDATE workspace_members SET role = 'ADMIN' WHERE workspace_id = $1 AND account_id = $2`, [input.workspaceId, caller]);
      }
      await tx.query(
        `INSERT INTO workspace_members (workspace_id, account_id, role, monthly_limit, joined_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (workspace_id, account_id) DO UPDATE SET role = $3, monthly_limit = $4`,
        [input.workspaceId, target, input.role, input.monthlyLimit ?? null, now],
      );
      for (const member of new Set([target, caller])) await publishInTx(tx, { type: 'membership', accountId: input.workspaceId, member, removed: false });
      return { member: await this.membership(target, input.workspaceId, tx), workspaceId: input.workspaceId };
    });
  }

  /** Removes a member (a member may leave; the OWNER and ADMINs remove others, an ADMIN not the OWNER; the OWNER cannot leave). */
  async removeMember(caller: string, input: { workspaceId: string; accountId: string }): Promise<MemberOutcome> {
    return transaction(this.db, async (tx) => {
      const me = await this.locked(tx, caller, input.workspaceId);
      if (!me) return { error: NOT_FOUND };
      const leaving = input.accountId === caller;
      if (!leaving && !isManager(me.role)) return { forbidden: 'Only the OWNER or an ADMIN of the workspace removes other members' };
      const target = leaving ? me : await this.membership(input.accountId, input.workspaceId, tx);
      if (!target) return { error: { code: UserErrorCode.NOT_FOUND, message: 'No member of this workspace has this account id', field: ['input', 'accountId'] } };
      if (target.role === WorkspaceRole.OWNER) {
        if (!leaving) return { forbidden: 'Only the OWNER changes the OWNER' };
        return { error: { code: UserErrorCode.INVALID_STATE, message: 'The OWNER cannot leave: make another member OWNER first', field: ['input', 'accountId'] } };
      }
      await tx.query('DELETE FROM workspace_members WHERE workspace_id = $1 AND account_id = $2', [input.workspaceId, target.account_id]);
      await publishInTx(tx, { type: 'membership', accountId: input.workspaceId, member: target.account_id, removed: true });
      return { member: target, workspaceId: input.workspaceId };
    });
  }

  /** The workspace's members, newest first, a page of them. */
  async members(workspaceId: string, page: { first?: number | null; after?: { joinedAt: Date; accountId: string } | null }): Promise<{ rows: MemberRow[]; more: boolean }> {
    const first = page.first ?? 20;
    const after = page.after;
    const rows = (await this.db.query(
      `SELECT ${MEMBER_COLUMNS} FROM workspace_members m WHERE m.workspace_id = $1 ${after ? 'AND (m.joined_at, m.account_id) < ($3, $4)' : ''}
        ORDER BY m.joined_at DESC, m.account_id DESC LIMIT ${first + 1}`,
      after ? [workspaceId, this.clock.now(), after.joinedAt, after.accountId] : [workspaceId, this.clock.now()],
    )) as MemberRow[];
    return { rows: rows.slice(0, first), more: rows.length > first };
  }

  async memberCount(workspaceId: string): Promise<number> {
    const [r] = (await this.db.query('SELECT count(*)::int AS n FROM workspace_members WHERE workspace_id = $1', [workspaceId])) as { n: number }[];
    return r.n;
  }

  /**
   * The caller's membership, with the workspace row locked (membership changes of one workspace,
   * one at a time). FOR NO KEY UPDATE, not FOR UPDATE: every foreign key naming the workspace (a
   * member's spending row, a notification) takes KEY SHARE on this row, and a FOR UPDATE waiting
   * here made those wait behind it — a cycle with a refund holding one and a batch of starts
   * (test/workspace-start-locks.test.ts).
   */
  private async locked(tx: Tx, caller: string, workspaceId: string): Promise<MemberRow | undefined> {
    if (!isWorkspaceId(workspaceId)) return undefined;
    const [w] = await tx.query('SELECT id FROM workspaces WHERE id = $1 FOR NO KEY UPDATE', [workspaceId]);
    if (!w) return undefined;
    return this.membership(caller, workspaceId, tx);
  }
}
