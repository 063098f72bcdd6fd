/**
 * The refund policy. A purchase is refunded in full when asked within 24 hours of its
 * completion and no credit was used since then (generations started since, net of those that
 * were refunded); otherwise the request is kept as DENIED with CREDITS_ALREADY_USED or
 * REFUND_WINDOW_EXPIRED. Approval revokes the purchase's unspent credits (REVOCATION entries),
 * marks the purchase REFUNDED and refunds through the provider, in one transaction that holds
 * the account row lock — so a refund racing a generation start ends with one of them winning.
 */
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import { transaction, type Tx } from '../../common/db/transaction';
import { isUuid } from '../../common/ids';
import { UserErrorCode } from '../../common/errors/user-error-code.enum';
import type { PaymentProvider } from '../billing/payment-provider';
import { PurchaseKind, PurchaseStatus, type PurchaseRow } from '../billing/purchase.type';
import { addMonths, endPlan } from '../billing/plan.service';
import { BillingInterval } from '../catalog/catalog.enums';
import type { RefundRequestRow } from './refund-request.type';

export interface RefundOutcome {
  request?: RefundRequestRow;
  error?: { code: UserErrorCode; message: string; field?: string[] };
}


export class RefundService {
  constructor(private readonly db: DataSource, private readonly clock: Clock, private readonly provider: PaymentProvider) {}

  async request(accountId: string, purchaseId: string, reason?: string | null): Promise<RefundOutcome> {
    const notFound: RefundOutcome = { error: { code: UserErrorCode.NOT_FOUND, message: 'No purchase of yours has this id', field: ['input', 'purchaseId'] } };
    if (!isUuid(purchaseId)) return notFound;
    return transaction(this.db, async (tx) => {
      // The account row lock orders this against every ledger change of the account.
      await tx.query('SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE', [accountId]);
      const [purchase] = await tx.query<PurchaseRow>('SELECT * FROM purchases WHERE id = $1 AND account_id = $2 FOR UPDATE', [purchaseId, accountId]);
      if (!purchase) return notFound;
      const [existing] = await tx.query<RefundRequestRow>('SELECT * FROM refund_requests WHERE purchase_id = $1', [purchaseId]);
      if (existing) {
        return { request: existing, error: { code: UserErrorCode.REFUND_ALREADY_REQUESTED, message: 'A refund was already requested for this purchase', field: ['input', 'purchaseId'] } };
      }
      if (purchase.status !== PurchaseStatus.COMPLETED) {
        return { error: { code: UserErrorCode.INVALID_STATE, message: `The purchase is ${purchase.status}, not COMPLETED`, field: ['input', 'purchaseId'] } };
      }
      if (purchase.kind === PurchaseKind.PLAN) {
        // A plan is refunded from its latest purchase backwards: an earlier one still pays for what followed.
        const [latest] = await tx.query<{ id: string }>(
          `SELECT id FROM purchases WHERE account_id = $1 AND kind = 'PLAN' AND status = 'COMPLETED' ORDER BY created_at DESC, id DESC LIMIT 1`,
          [accountId],
        );
        if (latest?.id !== purchase.id) {
          return { error: { code: UserErrorCode.INVALID_STATE, message: 'Only your latest plan purchase can be refunded', field: ['input', 'purchaseId'] } };
        }
      }
      const now = this.clock.now();
      if (now.getTime() > purchase.refundable_until!.getTime()) {
        const share = purchase.kind === PurchaseKind.PLAN && purchase.billing_interval === BillingInterval.ANNUAL ? unusedShare(purchase, now) : undefined;
        if (share && share.cents > 0) return this.toReview(tx, purchase, reason, share, now);
        return this.deny(tx, purchase, reason, UserErrorCode.REFUND_WINDOW_EXPIRED,
          `Refunds are possible within 24 hours of a purchase; this one completed at ${purchase.completed_at!.toISOString()}`);
      }
      const used = await this.creditsUsedSince(tx, accountId, purchase);
      if (used > 0) {
        return this.deny(tx, purchase, reason, UserErrorCode.CREDITS_ALREADY_USED,
          `${used} ${used === 1 ? 'credit was' : 'credits were'} used since the purchase; it is no longer refundable`);
      }
      return this.approve(tx, purchase, reason, now);
    });
  }

  /**
   * Credits spent on generations since the purchase, not counting generations that were
   * refunded. "Since" is in ledger order (entry ids, assigned under the account lock), not by
   * clock readings, which can disagree between instances.
   */
  private async creditsUsedSince(tx: Tx, accountId: string, p: PurchaseRow): Promise<number> {
    const [row] = await tx.query<{ used: number }>(
      `WITH mark AS (SELECT min(id) AS id FROM ledger_entries WHERE account_id = $1 AND purchase_id = $2)
       SELECT coalesce(-sum(d.amount), 0)::int AS used FROM ledger_entries d, mark
        WHERE d.account_id = $1 AND d.kind = 'DEBIT'
          AND (CASE WHEN mark.id IS NOT NULL THEN d.id > mark.id ELSE d.created_at >= $3 END)
          AND NOT EXISTS (SELECT 1 FROM ledger_entries r WHERE r.job_id = d.job_id AND r.kind = 'REFUND')`,
      [accountId, p.id, p.completed_at],
    );
    return row.used;
  }

  private async deny(tx: Tx, p: PurchaseRow, reason: string | null | undefined, code: UserErrorCode, why: string): Promise<RefundOutcome> {
    const now = this.clock.now();
    const [request] = await tx.query<RefundRequestRow>(
      `INSERT INTO refund_requests (purchase_id, account_id, status, amount_cents, reason, decision_reason, created_at, decided_at)
       VALUES ($1, $2, 'DENIED', 0, $3, $4, $5, $5) RETURNING *`,
      [p.id, p.account_id, reason ?? null, why, now],
    );
    await this.notify(tx, p.account_id, `Your refund request for the ${describe(p)} was declined: ${why}.`, now);
    return { request, error: { code, message: why } };
  }

  private async approve(tx: Tx, p: PurchaseRow, reason: string | null | undefined, now: Date): Promise<RefundOutcome> {
    const { revoked, ref } = await this.settle(tx, p, p.amount_cents, now);
    const [request] = await tx.query<RefundRequestRow>(
      `INSERT INTO refund_requests (purchase_id, account_id, status, amount_cents, credits_revoked, reason, decision_reason, provider_ref, created_at, decided_at)
       VALUES ($1, $2, 'APPROVED', $3, $4, $5, $6, $7, $8, $8) RETURNING *`,
      [p.id, p.account_id, p.amount_cents, revoked, reason ?? null, 'Refunded in full: asked within 24 hours and no credits used since', ref, now],
    );
    await this.notify(tx, p.account_id, refundedMessage(p, p.amount_cents, revoked), now);
    return { request };
  }

  /**
   * The money and credits side of an approved refund: the purchase's unspent credits are
   * withdrawn (REVOCATION), the purchase is REFUNDED (or PARTIALLY_REFUNDED), a plan ends at
   * once, and the provider pays `amountCents` back. The money goes back first: a subscription is
   * cancelled or repriced at the provider only once the refund went through (a failed refund
   * rolls back and leaves the subscription as it was; asking again is one refund, by its key).
   */
  private async settle(tx: Tx, p: PurchaseRow, amountCents: number, now: Date): Promise<{ revoked: number; ref: string | null }> {
    const taken = await tx.query<{ amount: number }>(
      `SELECT t.amount FROM credit_lots l, LATERAL ledger_take_lot(l.account_id, l.id, 'REVOCATION', $3, $2, NULL, $4) t
        WHERE l.purchase_id = $2 AND l.account_id = $1 AND l.remaining > 0`,
      [p.account_id, p.id, `Refund of the ${describe(p)}: its credits are withdrawn`, now],
    );
    const revoked = taken.reduce((sum, r) => sum + r.amount, 0);
    await tx.query(`UPDATE purchases SET status = $2 WHERE id = $1`, [p.id, amountCents < p.amount_cents ? 'PARTIALLY_REFUNDED' : 'REFUNDED']);
    /** What the provider's subscription is told, after the refund. */
    let atProvider: (() => Promise<void>) | undefined;
    if (p.kind === PurchaseKind.PLAN) {
      const [a] = await tx.query<{ current_period_start: Date | null; billing_interval: 'MONTHLY' | 'ANNUAL' | null; stripe_subscription_id: string | null }>(
        'SELECT current_period_start, billing_interval, stripe_subscription_id FROM accounts WHERE id = $1',
        [p.account_id],
      );
      const [previous] = await tx.query<{ tier: string }>(
        `SELECT tier FROM purchases WHERE account_id = $1 AND kind = 'PLAN' AND status = 'COMPLETED' AND id <> $2
            AND period_start >= $3 ORDER BY created_at DESC, id DESC LIMIT 1`,
        [p.account_id, p.id, a?.current_period_start ?? p.period_start],
      );
      // A plan the provider bills as a subscription is told too, so it never charges for it again.
      const subscription = this.provider.subscriptions && a?.stripe_subscription_id ? a.stripe_subscription_id : null;
      if (previous && a?.current_period_start && p.period_start! > a.current_period_start) {
        // An upgrade inside the period: back to the tier the period was paid for (and its price from the next invoice).
        const [{ pending_tier: scheduled }] = await tx.query<{ pending_tier: string | null }>(
          'UPDATE accounts SET tier = $2 WHERE id = $1 RETURNING pending_tier',
          [p.account_id, previous.tier],
        );
        if (subscription) {
          const [t] = await tx.query<{ name: string; monthly_price_cents: number; annual_price_cents: number; currency: string }>(
            'SELECT name, monthly_price_cents, annual_price_cents, currency FROM tiers WHERE code = $1',
            [scheduled ?? previous.tier],
          );
          const interval = a.billing_interval ?? 'MONTHLY';
          const price = { amountCents: interval === 'ANNUAL' ? t.annual_price_cents : t.monthly_price_cents, currency: t.currency.trim(), interval, name: `${t.name} plan` };
          atProvider = () => this.provider.subscriptions!.reprice(subscription, price);
        }
      } else {
        if (subscription) atProvider = () => this.provider.subscriptions!.cancelNow(subscription);
        await endPlan(tx, p.account_id);
      }
    }
    const refund = amountCents > 0 && p.provider_ref ? await this.provider.refund(p.provider_ref, amountCents) : undefined;
    if (atProvider) await atProvider();
    return { revoked, ref: refund?.ref ?? null };
  }

  /** Annual plans past the window: the unused whole months' share, for an admin to decide. */
  private async toReview(tx: Tx, p: PurchaseRow, reason: string | null | undefined, share: { cents: number; unused: number; total: number }, now: Date): Promise<RefundOutcome> {
    const amount = share.cents;
    const unused = share.unused;
    const [request] = await tx.query<RefundRequestRow>(
      `INSERT INTO refund_requests (purchase_id, account_id, status, amount_cents, reason, decision_reason, created_at)
       VALUES ($1, $2, 'PENDING_REVIEW', $3, $4, $5, $6) RETURNING *`,
      [p.id, p.account_id, amount, reason ?? null, `Annual plan past the 24-hour window: ${unused} unused whole months of ${share.total} proposed for a partial refund; an admin decides`, now],
    );
    return { request };
  }

  /** Admin: decides a PENDING_REVIEW request. */
  async review(adminId: string, id: string, approve: boolean, note?: string | null): Promise<RefundOutcome> {
    if (!isUuid(id)) return { error: { code: UserErrorCode.NOT_FOUND, message: 'No refund request has this id', field: ['input', 'id'] } };
    return transaction(this.db, async (tx) => {
      const [found] = await tx.query<RefundRequestRow>('SELECT * FROM refund_requests WHERE id = $1', [id]);
      if (!found) return { error: { code: UserErrorCode.NOT_FOUND, message: 'No refund request has this id', field: ['input', 'id'] } };
      await tx.query('SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE', [found.account_id]);
      const [r] = await tx.query<RefundRequestRow>('SELECT * FROM refund_requests WHERE id = $1 FOR UPDATE', [id]);
      if (r.status !== 'PENDING_REVIEW') {
        return { request: r, error: { code: UserErrorCode.INVALID_STATE, message: `The request was already decided: ${r.status}`, field: ['input', 'id'] } };
      }
      const now = this.clock.now();
      const [p] = await tx.query<PurchaseRow>('SELECT * FROM purchases WHERE id = $1 FOR UPDATE', [r.purchase_id]);
      if (!approve) {
        const [denied] = await tx.query<RefundRequestRow>(
          `UPDATE refund_requests SET status = 'DENIED', amount_cents = 0, decision_reason = $2, decided_by = $3, decided_at = $4 WHERE id = $1 RETURNING *`,
          [id, note || 'Declined after review', adminId, now],
        );
        await this.notify(tx, r.account_id, `Your refund request for the ${describe(p)} was declined after review${note ? `: ${note}` : ''}.`, now);
        return { request: denied };
      }
      // Months went on while the request waited: refund what is unused now, never more than proposed.
      const amount = Math.min(r.amount_cents, unusedShare(p, now).cents);
      const { revoked, ref } = await this.settle(tx, p, amount, now);
      const [approved] = await tx.query<RefundRequestRow>(
        `UPDATE refund_requests SET status = 'APPROVED', amount_cents = $7, credits_revoked = $2, decision_reason = $3, decided_by = $4, decided_at = $5, provider_ref = $6
          WHERE id = $1 RETURNING *`,
        [id, revoked, note || `Partial refund of ${amount} cents approved after review`, adminId, now, ref, amount],
      );
      await this.notify(tx, r.account_id, refundedMessage(p, amount, revoked), now);
      return { request: approved };
    });
  }

  private async notify(tx: Tx, accountId: string, message: string, now: Date): Promise<void> {
    await tx.query(`INSERT INTO notifications (account_id, kind, message, created_at) VALUES ($1, 'REFUND_DECIDED', $2, $3)`, [accountId, message, now]);
  }

  async purchaseOf(accountId: string, purchaseId: string): Promise<PurchaseRow | undefined> {
    const [row] = (await this.db.query('SELECT * FROM purchases WHERE id = $1 AND account_id = $2', [purchaseId, accountId])) as PurchaseRow[];
    return row;
  }
}

/** Months of an annual period that have not started yet (0 to 12). */
export function unusedWholeMonths(periodStart: Date, periodEnd: Date, now: Date): { unused: number; total: number } {
  let unused = 0;
  let total = 0;
  for (let k = 0; k < 12 && addMonths(periodStart, k) < periodEnd; k++) {
    total++;
    if (addMonths(periodStart, k) > now) unused++;
  }
  return { unused, total };
}

/** The share of a plan purchase's price for its months not started yet. */
function unusedShare(p: PurchaseRow, now: Date): { cents: number; unused: number; total: number } {
  const { unused, total } = unusedWholeMonths(p.period_start!, p.period_end!, now);
  return { cents: total ? Math.floor((p.amount_cents * unused) / total) : 0, unused, total };
}

function refundedMessage(p: PurchaseRow, cents: number, revoked: number): string {
  return `Your ${describe(p)} was refunded: ${(cents / 100).toFixed(2)} ${p.currency.trim()} is on its way back and its ${revoked} credits were withdrawn.`;
}

function describe(p: PurchaseRow): string {
  return p.pack_code ? `${p.pack_code} credit pack` : `${p.tier} plan`;
}

