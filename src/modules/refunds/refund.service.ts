/**
 * Refunds under the published policy (decisions in refund-policy.ts). A request is decided at
 * once — APPROVED in full, DENIED with its code — or, for an annual plan past the window, kept
 * PENDING_REVIEW with its proposed amount for an admin, whose approval is re-checked at decision
 * time. A DENIED request does not block a later one; a PENDING_REVIEW or APPROVED one does.
 * Every decision holds the account row lock, so a refund racing a generation start ends with one
 * of them winning.
 */
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import { transaction, type Tx } from '../../common/db/transaction';
import { isUuid } from '../../common/ids';
import { UserErrorCode } from '../../common/errors/user-error-code.enum';
import type { Logger } from 'pino';
import type { IntentSpec, PaymentIntents } from '../billing/payment-intents';
import type { PaymentProvider } from '../billing/payment-provider';
import { PurchaseKind, PurchaseStatus, type PurchaseRow } from '../billing/purchase.type';
import { tierMap, type PlanLifecycle } from '../billing/plans/plan-lifecycle';
import type { Tiers } from '../billing/plans/plan-policy';
import type { TierCode } from '../catalog/catalog.enums';
import type { CatalogService } from '../catalog/catalog.service';
import { keepNotice, purchaseName, refOf, type Notice } from '../notifications/notices';
import { decideApproval, decideRequest, type RequestDecision } from './refund-policy';
import type { RefundRequestRow } from './refund-request.type';

export interface RefundOutcome {
  request?: RefundRequestRow;
  error?: { code: UserErrorCode; message: string; field?: string[] };
}

interface AccountPlan {
  current_period_start: Date | null;
  current_period_end: Date | null;
  allowance_period_end: Date | null;
}

const FIELD = ['input', 'purchaseId'];

export class RefundService {
  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly catalog: CatalogService,
    private readonly plans: PlanLifecycle,
    private readonly intents: PaymentIntents,
    provider: PaymentProvider,
    private readonly log: Logger,
  ) {
    // The money goes back under one key per refund request, whatever happens to the request's amount later.
    intents.register('refund', {
      call: (i) => provider.refund(i.payload.ref as string, i.payload.amountCents as number, i.payload.key),
      complete: async (tx, i, result) => {
        await tx.query('UPDATE refund_requests SET provider_ref = $2 WHERE id = $1', [i.payload.requestId, (result as { ref: string }).ref]);
      },
    });
  }

  async request(accountId: string, purchaseId: string, reason?: string | null): Promise<RefundOutcome> {
    const notFound: RefundOutcome = { error: { code: UserErrorCode.NOT_FOUND, message: 'No purchase of yours has this id', field: FIELD } };
    if (!isUuid(purchaseId)) return notFound;
    // Read before the transaction: a catalog reload inside it would need a second connection.
    const tiers = tierMap(await this.catalog.tiers());
    let group: string | null = null;
    const out = await transaction(this.db, async (tx): Promise<RefundOutcome> => {
      // The account row lock orders this against every ledger change of the account.
      await tx.query('SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE', [accountId]);
      const [purchase] = await tx.query<PurchaseRow>('SELECT * FROM purchases WHERE id = $1 AND account_id = $2 FOR UPDATE', [purchaseId, accountId]);
      if (!purchase) return notFound;
      const now = this.clock.now();
      const assessed = await this.assess(tx, accountId, purchase, tiers, now);
      if ('refusal' in assessed) return assessed.refusal;
      const { decision } = assessed;
      group = null;
      if (decision.kind === 'deny') {
        const request = await this.insert(tx, purchase, 'DENIED', 0, 0, reason, decision.why, now, true);
        await keepNotice(tx, purchase.account_id, { template: 'refundDeclined', params: { purchase: refOf(purchase), why: decision.why } }, now, { purchaseId: purchase.id, refundRequestId: request.id });
        return { request, error: { code: decision.code, message: decision.why } };
      }
      if (decision.kind === 'review') return { request: await this.insert(tx, purchase, 'PENDING_REVIEW', decision.cents, 0, reason, decision.why, now, false) };
      const id = randomUUID();
      const refunded = await this.refundInFull(tx, purchase, tiers, now, id);
      group = refunded.group;
      const request = await this.insert(tx, purchase, 'APPROVED', purchase.amount_cents, refunded.revoked, reason,
        'Refunded in full: asked within 24 hours and no credits used since', now, true, id);
      await keepNotice(tx, purchase.account_id, refundedNotice(purchase, purchase.amount_cents, refunded.revoked), now, { purchaseId: purchase.id, refundRequestId: request.id });
      return { request };
    });
    return this.paying(out, group);
  }

  /**
   * The decision is committed; the provider pays the money back now (and is told about the plan
   * after). A provider that cannot be reached does not undo it: the reconciler pays it later,
   * under the same key.
   */
  private async paying(out: RefundOutcome, group: string | null): Promise<RefundOutcome> {
    if (!group) return out;
    try {
      await this.intents.runGroup(group);
      const [fresh] = (await this.db.query('SELECT * FROM refund_requests WHERE id = $1', [out.request!.id])) as RefundRequestRow[];
      return { ...out, request: fresh ?? out.request };
    } catch (e) {
      this.log.warn({ err: e, request: out.request?.id }, 'refund decided, the provider did not answer: the reconciler pays it back later');
      return out;
    }
  }

  /** Admin: decides a PENDING_REVIEW request (an annual plan's partial refund), re-checked now. */
  async review(adminId: string, id: string, approve: boolean, note?: string | null): Promise<RefundOutcome> {
    const notFound: RefundOutcome = { error: { code: UserErrorCode.NOT_FOUND, message: 'No refund request has this id', field: ['input', 'id'] } };
    if (!isUuid(id)) return notFound;
    const tiers = tierMap(await this.catalog.tiers());
    let group: string | null = null;
    const out = await transaction(this.db, async (tx): Promise<RefundOutcome> => {
      group = null;
      const [found] = await tx.query<RefundRequestRow>('SELECT * FROM refund_requests WHERE id = $1', [id]);
      if (!found) return notFound;
      await tx.query('SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE', [found.account_id]);
      const [r] = await tx.query<RefundRequestRow>('SELECT * FROM refund_requests WHERE id = $1 FOR UPDATE', [id]);
      if (r.status !== 'PENDING_REVIEW') {
        return { request: r, error: { code: UserErrorCode.INVALID_STATE, message: `The request was already decided: ${r.status}`, field: ['input', 'id'] } };
      }
      const now = this.clock.now();
      const [p] = await tx.query<PurchaseRow>('SELECT * FROM purchases WHERE id = $1 FOR UPDATE', [r.purchase_id]);
      const deny = async (why: string) => {
        const [denied] = await tx.query<RefundRequestRow>(
          `UPDATE refund_requests SET status = 'DENIED', amount_cents = 0, decision_reason = $2, decided_by = $3, decided_at = $4 WHERE id = $1 RETURNING *`,
          [id, why, adminId, now],
        );
        await keepNotice(tx, r.account_id, { template: 'refundDeclined', params: { purchase: refOf(p), why: why || null } }, now, { purchaseId: p.id, refundRequestId: r.id });
        return { request: denied };
      };
      if (!approve) return deny(note || 'Declined after review');
      const [a] = await tx.query<AccountPlan>('SELECT * FROM accounts WHERE id = $1', [p.account_id]);
      const current = p.status === PurchaseStatus.COMPLETED && (await this.latestPlanPurchase(tx, p.account_id)) === p.id
        && a.current_period_end?.getTime() === p.period_end?.getTime();
      const decided = decideApproval(p, r.amount_cents, current, now, tierOf(tiers, p.tier)?.monthlyPriceCents ?? 0);
      if ('deny' in decided) return deny(decided.deny);
      // An annual plan's share: PARTIALLY_REFUNDED; the plan ends with its current month (paid for: its credits stay until then).
      await tx.query(`UPDATE purchases SET status = 'PARTIALLY_REFUNDED' WHERE id = $1`, [p.id]);
      group = await this.plans.refunded(tx, p.account_id, 'annualShare', tiers, this.moneyBack(p, decided.cents, r.id));
      const [approved] = await tx.query<RefundRequestRow>(
        `UPDATE refund_requests SET status = 'APPROVED', amount_cents = $5, credits_revoked = 0, decision_reason = $2, decided_by = $3, decided_at = $4
          WHERE id = $1 RETURNING *`,
        [id, note || `Partial refund of ${decided.cents} cents approved after review; the plan ends with its current month`, adminId, now, decided.cents],
      );
      await keepNotice(tx, r.account_id, { template: 'refundedInPart', params: { purchase: refOf(p), cents: decided.cents, currency: p.currency, until: a.allowance_period_end!.toISOString().slice(0, 10) } }, now, { purchaseId: p.id, refundRequestId: r.id });
      return { request: approved };
    });
    return this.paying(out, group);
  }

  /** The provider call that pays `cents` of the purchase back, keyed by the refund request. */
  private moneyBack(p: PurchaseRow, cents: number, requestId: string): IntentSpec[] {
    return cents > 0 && p.provider_ref ? [{ kind: 'refund', payload: { key: `refund-${requestId}`, requestId, ref: p.provider_ref, amountCents: cents } }] : [];
  }

  async purchaseOf(accountId: string, purchaseId: string): Promise<PurchaseRow | undefined> {
    const [row] = (await this.db.query('SELECT * FROM purchases WHERE id = $1 AND account_id = $2', [purchaseId, accountId])) as PurchaseRow[];
    return row;
  }

  private async latestPlanPurchase(tx: Tx, accountId: string): Promise<string | undefined> {
    const [latest] = await tx.query<{ id: string }>(
      `SELECT id FROM purchases WHERE account_id = $1 AND kind = 'PLAN' AND status = 'COMPLETED' ORDER BY created_at DESC, id DESC LIMIT 1`,
      [accountId],
    );
    return latest?.id;
  }

  /**
   * Credits spent on generations since the purchase, net of what their refunds gave back (a job
   * refunded in full counts nothing; one stopped at 90 % counts what it rendered). "Since" is in ledger order (entry ids, assigned under the account lock), not by
   * clock readings, which can disagree between instances.
   */
  private async creditsUsedSince(tx: Tx, accountId: string, p: PurchaseRow): Promise<number> {
    const [row] = await tx.query<{ used: number }>(
      `WITH mark AS (SELECT min(id) AS id FROM ledger_entries WHERE account_id = $1 AND purchase_id = $2)
       SELECT coalesce(sum(-d.amount - coalesce(r.amount, 0)), 0)::int AS used
         FROM mark, ledger_entries d LEFT JOIN ledger_entries r ON r.job_id = d.job_id AND r.kind = 'REFUND'
        WHERE d.account_id = $1 AND d.kind = 'DEBIT'
          AND (CASE WHEN mark.id IS NOT NULL THEN d.id > mark.id ELSE d.created_at >= $3 END)`,
      [accountId, p.id, p.completed_at],
    );
    return row.used;
  }

  /**
   * A full refund: the purchase's unspent credits are withdrawn (REVOCATION), the purchase is
   * REFUNDED, a plan ends at once (an upgrade inside a period goes back to the tier the period was
   * paid for). The money goes back first, then the provider's subscription is told (one group of
   * payment intents, in that order, run after commit).
   */
  private async refundInFull(tx: Tx, p: PurchaseRow, tiers: Tiers, now: Date, requestId: string): Promise<{ revoked: number; group: string | null }> {
    const taken = await tx.query<{ amount: number }>(
      `SELECT t.amount FROM credit_lots l, LATERAL ledger_take_lot(l.account_id, l.id, 'REVOCATION', $3, $2, NULL, $4) t
        WHERE l.purchase_id = $2 AND l.account_id = $1 AND l.remaining > 0`,
      [p.account_id, p.id, `Refund of the ${describe(p)}: its credits are withdrawn`, now],
    );
    const revoked = taken.reduce((sum, r) => sum + r.amount, 0);
    await tx.query(`UPDATE purchases SET status = 'REFUNDED' WHERE id = $1`, [p.id]);
    const money = this.moneyBack(p, p.amount_cents, requestId);
    if (p.kind !== PurchaseKind.PLAN) return { revoked, group: money.length ? await this.intents.record(tx, p.account_id, money) : null };
    const [a] = await tx.query<AccountPlan>('SELECT * FROM accounts WHERE id = $1', [p.account_id]);
    const [previous] = await tx.query<{ tier: TierCode }>(
      `SELECT tier FROM purchases WHERE account_id = $1 AND kind = 'PLAN' AND status = 'COMPLETED' AND id <> $2
          AND period_start >= $3 ORDER BY created_at DESC, id DESC LIMIT 1`,
      [p.account_id, p.id, a.current_period_start ?? p.period_start],
    );
    const upgrade = !!previous && !!a.current_period_start && p.period_start! > a.current_period_start;
    return { revoked, group: await this.plans.refunded(tx, p.account_id, upgrade ? 'upgrade' : 'plan', tiers, money, upgrade ? previous.tier : undefined) };
  }

  /**
   * What a refund request for this purchase would get now: a refusal (one already open, not
   * COMPLETED, not the latest plan purchase) or the policy's decision. The one rule behind both
   * requestRefund and Purchase.refundable.
   */
  private async assess(tx: Tx, accountId: string, purchase: PurchaseRow, tiers: Tiers, now: Date): Promise<{ refusal: RefundOutcome } | { decision: RequestDecision }> {
    const [open] = await tx.query<RefundRequestRow>(
      `SELECT * FROM refund_requests WHERE purchase_id = $1 AND status IN ('PENDING_REVIEW', 'APPROVED') ORDER BY created_at DESC LIMIT 1`,
      [purchase.id],
    );
    if (open) {
      return { refusal: { request: open, error: { code: UserErrorCode.REFUND_ALREADY_REQUESTED, message: 'A refund was already requested for this purchase', field: FIELD } } };
    }
    if (purchase.status !== PurchaseStatus.COMPLETED) {
      return { refusal: { error: { code: UserErrorCode.INVALID_STATE, message: `The purchase is ${purchase.status}, not COMPLETED`, field: FIELD } } };
    }
    if (purchase.kind === PurchaseKind.PLAN && (await this.latestPlanPurchase(tx, accountId)) !== purchase.id) {
      // A plan is refunded from its latest purchase backwards: an earlier one still pays for what followed.
      return { refusal: { error: { code: UserErrorCode.INVALID_STATE, message: 'Only your latest plan purchase can be refunded', field: FIELD } } };
    }
    const used = await this.creditsUsedSince(tx, accountId, purchase);
    return { decision: decideRequest(purchase, now, used, tierOf(tiers, purchase.tier)?.monthlyPriceCents ?? 0) };
  }

  /** Whether requestRefund would refund this purchase now (in full, or a share an admin reviews). */
  async refundable(purchase: PurchaseRow): Promise<boolean> {
    if (purchase.status !== PurchaseStatus.COMPLETED) return false;
    const tiers = tierMap(await this.catalog.tiers());
    return transaction(this.db, async (tx) => {
      const assessed = await this.assess(tx, purchase.account_id, purchase, tiers, this.clock.now());
      return 'decision' in assessed && assessed.decision.kind !== 'deny';
    });
  }

  /** The purchase's latest refund request, whatever its status. */
  async latestRequest(purchaseId: string): Promise<RefundRequestRow | undefined> {
    const [r] = (await this.db.query('SELECT * FROM refund_requests WHERE purchase_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1', [purchaseId])) as RefundRequestRow[];
    return r;
  }

  private async insert(
    tx: Tx, p: PurchaseRow, status: 'APPROVED' | 'DENIED' | 'PENDING_REVIEW', amountCents: number, revoked: number, reason: string | null | undefined,
    why: string, now: Date, decided: boolean, id: string = randomUUID(),
  ): Promise<RefundRequestRow> {
    const [request] = await tx.query<RefundRequestRow>(
      `INSERT INTO refund_requests (id, purchase_id, account_id, status, amount_cents, credits_revoked, reason, decision_reason, created_at, decided_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *`,
      [id, p.id, p.account_id, status, amountCents, revoked, reason ?? null, why, now, decided ? now : null],
    );
    return request;
  }

}

const tierOf = (tiers: Tiers, code: string | null) => (code ? tiers.get(code as TierCode) : undefined);

function refundedNotice(p: PurchaseRow, cents: number, revoked: number): Notice {
  return { template: 'refunded', params: { purchase: refOf(p), cents, currency: p.currency, revoked } };
}

const describe = (p: PurchaseRow): string => purchaseName(refOf(p));
