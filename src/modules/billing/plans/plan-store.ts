/**
 * The one writer of the plan columns of accounts and of plan purchases: reads a plan under the
 * account row lock and applies what the policy decided, in the caller's transaction — the plan
 * columns, the purchase, the allowance grants (once per account and month), an upgrade's credits,
 * the notices, and the provider calls as payment intents (made after commit).
 */
import { keepNotice } from '../../notifications/notices';
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../../common/clock';
import type { Tx } from '../../../common/db/transaction';
import { derivedId } from '../../../common/ids';
import { LedgerEntryKind, LotSource } from '../../ledger/ledger.enums';
import type { LedgerService } from '../../ledger/ledger.service';
import type { PaymentIntents, IntentSpec } from '../payment-intents';
import { failPending } from '../purchase-writes';
import type { OpenCheckout, PlanChanges, PlanDecision } from './plan-policy';
import { stateOf, type AccountPlanRow, type PlanState } from './plan-state';

export const REFUND_WINDOW_MS = 24 * 3600 * 1000;

const COLUMNS: Record<keyof Omit<PlanChanges, 'lowCreditThreshold'>, string> = {
  tier: 'tier', interval: 'billing_interval', status: 'plan_status', periodStart: 'current_period_start', periodEnd: 'current_period_end', periodAnchor: 'period_anchor',
  monthStart: 'allowance_period_start', monthEnd: 'allowance_period_end', cancelAtPeriodEnd: 'cancel_at_period_end',
  pendingTier: 'pending_tier', pendingInterval: 'pending_interval', subscription: 'subscription_ref', customer: 'customer_ref',
};

/** A plan payment asked of the provider and not answered yet (an open checkout has its URL and does not count). */
const IN_FLIGHT = `EXISTS (SELECT 1 FROM purchases p WHERE p.account_id = a.id AND p.kind = 'PLAN' AND p.status = 'PENDING' AND p.checkout_url IS NULL) AS change_in_flight`;

export class PlanStore {
  constructor(private readonly clock: Clock, private readonly ledger: LedgerService, private readonly intents: PaymentIntents, private readonly providerName: string) {}

  /** The account's plan, its row locked until the transaction ends (unless `lock` is false: a preview); undefined when there is no such account. */
  async load(tx: Tx, accountId: string, lock = true): Promise<PlanState | undefined> {
    // The lock alone first: a read in the same statement would see what committed before the lock was waited for.
    if (lock && !(await tx.query('SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE', [accountId])).length) return undefined;
    const [a] = await tx.query<AccountPlanRow>(`SELECT a.*, ${IN_FLIGHT} FROM accounts a WHERE a.id = $1`, [accountId]);
    return a ? stateOf(a) : undefined;
  }

  /** The plan that a provider's subscription bills, locked. */
  async loadBySubscription(tx: Tx, subscription: string): Promise<PlanState | undefined> {
    const [owner] = await tx.query<{ id: string }>('SELECT id FROM accounts WHERE subscription_ref = $1', [subscription]);
    const s = owner && (await this.load(tx, owner.id));
    return s && s.subscription === subscription ? s : undefined;
  }

  /** Whose a subscription was, also after its plan ended (an invoice collected late still finds its account). */
  async ownerOf(tx: Tx, subscription: string): Promise<string | undefined> {
    const [o] = await tx.query<{ account_id: string }>('SELECT account_id FROM subscription_owners WHERE subscription_id = $1', [subscription]);
    return o?.account_id;
  }

  /** The plan purchase waiting for its checkout to be paid, locked. */
  async openCheckout(tx: Tx, accountId: string, lock = true): Promise<OpenCheckout | null> {
    const [p] = await tx.query<{ id: string; tier: OpenCheckout['tier']; billing_interval: OpenCheckout['interval']; amount_cents: number; checkout_url: string }>(
      `SELECT id, tier, billing_interval, amount_cents, checkout_url FROM purchases
        WHERE account_id = $1 AND kind = 'PLAN' AND status = 'PENDING' AND checkout_url IS NOT NULL ORDER BY created_at DESC LIMIT 1${lock ? ' FOR UPDATE' : ''}`,
      [accountId],
    );
    return p ? { id: p.id, tier: p.tier, interval: p.billing_interval, amountCents: p.amount_cents, checkoutUrl: p.checkout_url } : null;
  }

  /** The purchase that paid for the billing period starting at `start` (its months belong to it). */
  async periodPurchase(tx: Tx, accountId: string, start: Date | null): Promise<string | null> {
    if (!start) return null;
    const [g] = await tx.query<{ purchase_id: string | null }>('SELECT purchase_id FROM allowance_grants WHERE account_id = $1 AND period_start = $2', [accountId, start]);
    return g?.purchase_id ?? null;
  }

  /** Groups of plan payments of the account still open (a crash, a lost answer, or a request in flight). */
  async openPlanPayments(db: { query(sql: string, params: unknown[]): Promise<unknown> }, accountId: string): Promise<string[]> {
    const rows = (await db.query(
      `SELECT DISTINCT group_id FROM payment_intents WHERE account_id = $1 AND status = 'OPEN' AND kind IN ('plan.subscribe', 'plan.upgrade')`,
      [accountId],
    )) as { group_id: string }[];
    return rows.map((r) => r.group_id);
  }

  /** Has a purchase been recorded for this payment at the provider? */
  async knownPayment(tx: Tx, ref: string): Promise<boolean> {
    const [p] = await tx.query('SELECT 1 FROM purchases WHERE provider = $1 AND provider_ref = $2', [this.providerName, ref]);
    return !!p;
  }

  /**
   * Applies a decision to the account's plan. Returns the group of payment intents it recorded
   * (to be run after commit, `first` before the decision's own), if any.
   */
  async apply(tx: Tx, s: PlanState, d: PlanDecision, first: IntentSpec[] = []): Promise<string | null> {
    const now = this.clock.now();
    const id = s.accountId;
    if (d.fail) await failPending(tx, d.fail.id, d.fail.reason);
    if (d.end) {
      await tx.query(
        `UPDATE accounts SET tier = 'FREE', billing_interval = NULL, plan_status = 'CANCELED', current_period_start = NULL, current_period_end = NULL,
                cancel_at_period_end = false, pending_tier = NULL, pending_interval = NULL, allowance_period_start = NULL, allowance_period_end = NULL,
                subscription_ref = NULL, period_anchor = NULL
          WHERE id = $1`,
        [id],
      );
    }
    if (d.changes) await this.write(tx, id, d.changes, now);
    if (d.purchase) {
      const p = d.purchase;
      const completed = p.status !== 'PENDING';
      await tx.query(
        `INSERT INTO purchases (id, account_id, kind, status, tier, billing_interval, credits, amount_cents, currency, provider, provider_ref,
                                created_at, completed_at, refundable_until, period_start, period_end)
         VALUES ($1, $2, 'PLAN', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
        [p.id, id, p.status, p.tier, p.interval, p.credits, p.amountCents, p.currency, this.providerName, p.ref, now,
          completed ? now : null, p.status === 'COMPLETED' ? new Date(now.getTime() + REFUND_WINDOW_MS) : null, p.periodStart, p.periodEnd],
      );
    }
    if (d.complete && !(d.purchase?.status === 'COMPLETED')) {
      const c = d.complete;
      await tx.query(
        `UPDATE purchases SET status = 'COMPLETED', completed_at = $2, refundable_until = $3, provider_ref = $4, period_start = $5, period_end = $6,
                amount_cents = coalesce($7, amount_cents), failure_reason = NULL, checkout_url = NULL
          WHERE id = $1 AND status IN ('PENDING', 'FAILED')`,
        [c.id, now, new Date(now.getTime() + REFUND_WINDOW_MS), c.ref, c.periodStart, c.periodEnd, c.amountCents ?? null],
      );
    }
    for (const g of d.grants) await this.grantMonth(tx, id, g, now);
    if (d.topUp) {
      await this.ledger.grant(tx, {
        accountId: id, amount: d.topUp.credits, source: LotSource.MONTHLY_ALLOWANCE, kind: LedgerEntryKind.GRANT,
        description: d.topUp.description, expiresAt: d.topUp.expiresAt, purchaseId: d.topUp.purchaseId,
      });
    }
    const calls: IntentSpec[] = [];
    if (d.refundInvoice) calls.push(...(await this.refundInvoice(tx, s, d.refundInvoice, now)));
    calls.push(...first, ...d.calls);
    for (const n of d.notices) {
      await keepNotice(tx, id, n, now, { purchaseId: d.purchase?.id ?? d.complete?.id ?? d.grants[0]?.purchaseId ?? d.topUp?.purchaseId ?? null });
    }
    return calls.length ? this.intents.record(tx, id, calls) : null;
  }

  private async write(tx: Tx, accountId: string, c: PlanChanges, now: Date): Promise<void> {
    const sets: string[] = [];
    const params: unknown[] = [accountId];
    for (const [field, column] of Object.entries(COLUMNS) as [keyof typeof COLUMNS, string][]) {
      if (c[field] === undefined) continue;
      params.push(c[field]);
      sets.push(field === 'customer' ? `${column} = coalesce($${params.length}, ${column})` : `${column} = $${params.length}`);
    }
    if (c.lowCreditThreshold !== undefined) {
      params.push(c.lowCreditThreshold);
      sets.push(`low_credit_threshold = GREATEST(low_credit_threshold, $${params.length})`);
    }
    if (sets.length) await tx.query(`UPDATE accounts SET ${sets.join(', ')} WHERE id = $1`, params);
    if (c.subscription) {
      await tx.query('INSERT INTO subscription_owners (subscription_id, account_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [c.subscription, accountId, now]);
    }
  }

  /** The allowance of one month, once per account and month; a month already over is recorded but grants nothing. */
  private async grantMonth(tx: Tx, accountId: string, g: PlanDecision['grants'][number], now: Date): Promise<void> {
    const inserted = await tx.query(
      `INSERT INTO allowance_grants (account_id, period_start, period_end, tier, credits, purchase_id, created_at, lot_expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING 1`,
      [accountId, g.start, g.end, g.tier, g.credits, g.purchaseId, now, g.expiresAt],
    );
    if (!inserted.length || g.credits === 0 || g.end <= now) return;
    await this.ledger.grant(tx, {
      accountId, amount: g.credits, source: LotSource.MONTHLY_ALLOWANCE, kind: LedgerEntryKind.GRANT,
      description: `${g.label} plan: ${g.credits} credits for the month from ${g.start.toISOString().slice(0, 10)}`, expiresAt: g.expiresAt, purchaseId: g.purchaseId,
    });
  }

  /**
   * A renewal paid for a period not given here: a plan purchase of it (no credits) REFUNDED, its
   * refund APPROVED, the money back through the provider (an intent keyed by the request), a
   * REFUND_DECIDED notification. Once per invoice.
   */
  private async refundInvoice(tx: Tx, s: PlanState, r: NonNullable<PlanDecision['refundInvoice']>, now: Date): Promise<IntentSpec[]> {
    const inv = r.invoice;
    const [last] = await tx.query<{ tier: string | null; billing_interval: string | null; currency: string }>(
      `SELECT tier, billing_interval, currency FROM purchases WHERE account_id = $1 AND kind = 'PLAN' AND completed_at IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT 1`,
      [s.accountId],
    );
    const tier = s.tier !== 'FREE' ? s.tier : last?.tier ?? null;
    const currency = (inv.currency ?? last?.currency ?? 'USD').trim().toUpperCase();
    const [p] = await tx.query<{ id: string }>(
      `INSERT INTO purchases (id, account_id, kind, status, tier, billing_interval, credits, amount_cents, currency, provider, provider_ref, created_at, completed_at)
       VALUES ($1, $2, 'PLAN', 'REFUNDED', $3, $4, 0, $5, $6, $7, $8, $9, $9) ON CONFLICT DO NOTHING RETURNING id`,
      [derivedId('invoice-refunded', s.accountId, inv.id), s.accountId, tier, s.interval ?? last?.billing_interval ?? null, inv.amountPaid, currency, this.providerName, inv.id, now],
    );
    if (!p) return [];
    const requestId = randomUUID();
    await tx.query(
      `INSERT INTO refund_requests (id, purchase_id, account_id, status, amount_cents, credits_revoked, decision_reason, created_at, decided_at)
       VALUES ($1, $2, $3, 'APPROVED', $4, 0, $5, $6, $6)`,
      [requestId, p.id, s.accountId, inv.amountPaid, `Collected for a period not given (${r.why}): refunded in full`, now],
    );
    await keepNotice(tx, s.accountId, { template: 'renewalRefunded', params: { cents: inv.amountPaid, currency, tier: tier ?? null, why: r.why } }, now, { purchaseId: p.id, refundRequestId: requestId });
    return inv.amountPaid > 0 ? [{ kind: 'refund', payload: { key: `refund-${requestId}`, requestId, ref: inv.id, amountCents: inv.amountPaid } }] : [];
  }
}
