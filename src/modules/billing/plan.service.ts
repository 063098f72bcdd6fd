/**
 * Plans: FREE, CREATOR, PRO, MAX, billed MONTHLY or ANNUAL; the allowance is granted monthly
 * in both cases, as a MONTHLY_ALLOWANCE lot that expires at the end of its month.
 *
 * Proration rule (upgrades take effect at once): the charge is the difference of the two
 * prices for the current billing interval times the share of the billing period left (rounded
 * up to the cent); the credits are the difference of the two monthly allowances times the
 * share of the current allowance month left (rounded down), as an allowance lot expiring with
 * that month. From FREE (or a plan no longer active) a new period starts at once at full price.
 * A move to a lower tier, a change of interval, and a cancellation take effect at the period
 * end. At each period end (exactly once per account and period, whatever the number of
 * instances): the next period is charged and its first month's allowance granted (PLAN_RENEWED),
 * or, when the payment fails, the plan is PAST_DUE and no allowance comes until it is paid.
 *
 * With a provider that bills subscriptions (Stripe, `provider.subscriptions`) the money side
 * moves to the provider: a new plan opens a subscription checkout and starts when the provider
 * says it was paid (`completeCheckout`); each period after the first starts when its renewal
 * invoice is paid (`renewFromInvoice`), a failed one makes the plan PAST_DUE (`invoiceFailed`),
 * a deleted subscription ends the plan (`subscriptionEnded`). The renewal sweep never charges
 * such a plan: it only grants the allowance months inside a paid period and ends plans that
 * were cancelled at the period end. See docs/BILLING.md.
 */
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import { transaction, type Tx } from '../../common/db/transaction';
import { UserErrorCode } from '../../common/errors/user-error-code.enum';
import { BillingInterval, TierCode } from '../catalog/catalog.enums';
import type { CatalogService } from '../catalog/catalog.service';
import type { TierEntity } from '../catalog/tier.entity';
import { derivedId, isUuid } from '../../common/ids';
import { isUniqueViolation } from '../../common/db/sql';
import type { Logger } from 'pino';
import { idempotent, KeyReused, keyReusedError, readRecord, replayOf, requestHash } from '../ledger/idempotency';
import { LedgerEntryKind, LotSource } from '../ledger/ledger.enums';
import type { BalanceSnapshot, LedgerService } from '../ledger/ledger.service';
import { REFUND_WINDOW_MS } from './billing.service';
import type { PaymentProvider } from './payment-provider';
import { addMonths, monthsOf, nextAllowanceMonth } from './plan-calendar';
import { planPrice, priceOf } from './plan-price';
import type { PurchaseRow } from './purchase.type';

/** Ends the paid plan now: back to FREE, no period, nothing scheduled, no provider subscription. */
export async function endPlan(tx: Tx, accountId: string): Promise<void> {
  await tx.query(
    `UPDATE accounts SET tier = 'FREE', billing_interval = NULL, plan_status = 'CANCELED', current_period_start = NULL, current_period_end = NULL,
            cancel_at_period_end = false, pending_tier = NULL, pending_interval = NULL, allowance_period_start = NULL, allowance_period_end = NULL,
            stripe_subscription_id = NULL
      WHERE id = $1`,
    [accountId],
  );
}


/** What the provider's webhook says about a paid or failed subscription invoice. */
export interface SubscriptionInvoice {
  id: string;
  subscription: string;
  billingReason: string | null;
  amountPaid: number;
  /** ISO currency of the invoice, when the provider says it. */
  currency?: string;
  /** The subscription's metadata when the invoice was made (an upgrade names its purchase and tier). */
  metadata: Record<string, string>;
}

interface AccountPlanRow {
  id: string;
  tier: TierCode;
  billing_interval: BillingInterval | null;
  plan_status: 'ACTIVE' | 'CANCELED' | 'PAST_DUE';
  current_period_start: Date | null;
  current_period_end: Date | null;
  cancel_at_period_end: boolean;
  pending_tier: TierCode | null;
  pending_interval: BillingInterval | null;
  allowance_period_start: Date | null;
  allowance_period_end: Date | null;
  stripe_customer_id: string | null;
  stripe_subscription_id: string | null;
}

/**
 * Accounts with timed plan work due at $1: a new allowance month inside a billing period, the
 * FREE tier's next month, or a period end — except the period end of a plan a provider bills by
 * subscription and that was not cancelled (its renewal invoice starts the next period).
 */
const DUE = `plan_status = 'ACTIVE' AND (
    (current_period_end <= $1 AND (stripe_subscription_id IS NULL OR cancel_at_period_end))
    OR (allowance_period_end <= $1 AND (current_period_end IS NULL OR allowance_period_end < current_period_end)))`;

export interface PlanOutcome {
  purchaseId?: string;
  /** Where to pay, when the plan starts only once the provider's checkout is paid. */
  checkoutUrl?: string;
  balance?: BalanceSnapshot;
  error?: { code: UserErrorCode; message: string; field?: string[] };
}

export class PlanService {
  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly catalog: CatalogService,
    private readonly ledger: LedgerService,
    private readonly provider: PaymentProvider,
    private readonly log?: Logger,
  ) {}

  async changePlan(accountId: string, req: { tier: TierCode; interval: BillingInterval; idempotencyKey?: string | null }): Promise<PlanOutcome> {
    const input = { tier: req.tier, interval: req.interval };
    const reused: PlanOutcome = { error: keyReusedError() };
    const key = req.idempotencyKey ? { scope: accountId, key: req.idempotencyKey, operation: 'changePlan', hash: requestHash('changePlan', input) } : undefined;
    // A retry must not charge again: answer from the record before doing anything (one read, so
    // a first request committing meanwhile is never mistaken for a key used with other input).
    if (key) {
      const first = await readRecord<PlanOutcome>(this.db, key.scope, key.key);
      if (first) return first.operation === key.operation && first.request_hash === key.hash ? first.response : reused;
    }
    // Read before the transaction: a catalog reload inside it would need a second connection
    // while concurrent duplicates hold the pool's others, waiting for the account lock.
    const tiers = await this.catalog.tiers();
    // One purchase id per request (per key when there is one), so the provider charges once
    // even when the transaction is attempted again or a duplicate races this one.
    const purchaseId = key ? derivedId('changePlan', accountId, key.key) : randomUUID();
    try {
      const out = await idempotent<PlanOutcome, PlanOutcome>(
        this.db,
        { scope: accountId, key: req.idempotencyKey, operation: 'changePlan', input },
        () => this.clock.now(),
        async (tx) => {
          const result = await this.change(tx, accountId, req.tier, req.interval, purchaseId, tiers);
          return { result, store: result };
        },
      );
      if (out instanceof KeyReused) return reused;
      return 'fresh' in out ? out.fresh : out.stored;
    } catch (e) {
      // A concurrent duplicate committed this purchase first: answer with its record.
      if (key && isUniqueViolation(e, 'purchases_pkey')) {
        const first = await replayOf<PlanOutcome>(this.db, key);
        return first instanceof KeyReused ? reused : first;
      }
      throw e;
    }
  }

  async cancelPlan(accountId: string): Promise<PlanOutcome> {
    const tiers = await this.catalog.tiers();
    return transaction(this.db, async (tx) => {
      const a = await this.lock(tx, accountId);
      return this.scheduleCancel(tx, a, tiers);
    });
  }

  private async lock(tx: Tx, accountId: string): Promise<AccountPlanRow> {
    const [a] = await tx.query<AccountPlanRow>('SELECT * FROM accounts WHERE id = $1 FOR UPDATE', [accountId]);
    if (!a) throw new Error(`account ${accountId} does not exist`);
    return a;
  }

  /**
   * The provider bills this plan and its period has ended here without its renewal invoice
   * being paid yet: the provider has already started its next period (its renewal invoice is a
   * draft it collects about an hour later). A cancel or a change told to it now would apply to
   * that next period, not to the one ending, so none is taken until the invoice is settled.
   */
  private renewing(a: AccountPlanRow, now: Date): PlanOutcome | undefined {
    if (!this.billedBy(a) || a.plan_status !== 'ACTIVE' || !a.current_period_end || a.current_period_end > now) return undefined;
    return {
      error: {
        code: UserErrorCode.INVALID_STATE,
        message: 'Your plan’s renewal is in progress at Stripe; try again in a few minutes, once it is settled',
      },
    };
  }

  /** The provider's subscription of an account whose plan it bills, if any. */
  private billedBy(a: AccountPlanRow): string | null {
    return this.provider.subscriptions && a.stripe_subscription_id ? a.stripe_subscription_id : null;
  }

  private async change(tx: Tx, accountId: string, tier: TierCode, interval: BillingInterval, purchaseId: string, tiers: TierEntity[]): Promise<PlanOutcome> {
    const a = await this.lock(tx, accountId);
    if (tier === TierCode.FREE) return this.scheduleCancel(tx, a, tiers);
    const target = tiers.find((t) => t.code === tier)!;
    const current = tiers.find((t) => t.code === a.tier)!;
    const now = this.clock.now();
    if (a.tier === TierCode.FREE || a.plan_status !== 'ACTIVE') {
      if (this.provider.subscriptions) return this.openCheckout(tx, a, target, interval, purchaseId);
      return this.startPeriod(tx, a, target, interval, now, purchaseId);
    }
    const subscription = this.billedBy(a);
    const renewing = this.renewing(a, now);
    if (renewing) return renewing;
    if (a.tier === tier && a.billing_interval === interval) {
      if (!a.cancel_at_period_end && !a.pending_tier && !a.pending_interval) {
        return { error: { code: UserErrorCode.INVALID_STATE, message: `You are already on the ${target.name} plan, billed ${interval.toLowerCase()}` } };
      }
      if (subscription) {
        if (a.cancel_at_period_end) await this.provider.subscriptions!.cancelAtPeriodEnd(subscription, false);
        if (a.pending_tier && a.pending_tier !== a.tier) await this.provider.subscriptions!.reprice(subscription, planPrice(current, a.billing_interval!));
      }
      await tx.query('UPDATE accounts SET cancel_at_period_end = false, pending_tier = NULL, pending_interval = NULL WHERE id = $1', [a.id]);
      return {};
    }
    if (subscription && interval !== a.billing_interval) {
      return {
        error: {
          code: UserErrorCode.INVALID_STATE,
          message: `Your plan is billed ${a.billing_interval!.toLowerCase()} by Stripe and its interval cannot be changed; cancel it and subscribe again when it ends`,
          field: ['input', 'interval'],
        },
      };
    }
    if (target.rank > current.rank) {
      const scheduled = a.pending_tier && a.pending_tier !== a.tier ? tiers.find((t) => t.code === a.pending_tier)! : null;
      return this.upgrade(tx, a, current, target, interval, now, purchaseId, scheduled);
    }
    // Lower tier or another interval: from the next period (the provider charges the new price from its next invoice).
    if (subscription) {
      if (a.cancel_at_period_end) await this.provider.subscriptions!.cancelAtPeriodEnd(subscription, false);
      await this.provider.subscriptions!.reprice(subscription, planPrice(target, interval));
    }
    await tx.query('UPDATE accounts SET pending_tier = $2, pending_interval = $3, cancel_at_period_end = false WHERE id = $1', [a.id, tier, interval]);
    return {};
  }

  private async scheduleCancel(tx: Tx, a: AccountPlanRow, tiers: TierEntity[]): Promise<PlanOutcome> {
    const subscription = this.billedBy(a);
    if (a.tier !== TierCode.FREE && a.plan_status === 'PAST_DUE') {
      // Unpaid: nothing left to run to; it ends now (and the provider stops collecting).
      if (subscription) await this.provider.subscriptions!.cancelNow(subscription);
      await endPlan(tx, a.id);
      const tier = tiers.find((t) => t.code === a.tier)!;
      await this.notify(tx, a.id, 'PLAN_ENDED', `Your unpaid ${tier.name} plan ended as you asked; you are on the Free plan now.`);
      return {};
    }
    if (a.tier === TierCode.FREE || a.plan_status !== 'ACTIVE') {
      return { error: { code: UserErrorCode.INVALID_STATE, message: 'There is no paid plan to cancel' } };
    }
    const renewing = this.renewing(a, this.clock.now());
    if (renewing) return renewing;
    if (subscription) await this.provider.subscriptions!.cancelAtPeriodEnd(subscription, true);
    if (subscription && a.pending_tier && a.pending_tier !== a.tier) {
      const current = tiers.find((t) => t.code === a.tier)!;
      await this.provider.subscriptions!.reprice(subscription, planPrice(current, a.billing_interval!));
    }
    await tx.query('UPDATE accounts SET cancel_at_period_end = true, pending_tier = NULL, pending_interval = NULL WHERE id = $1', [a.id]);
    return {};
  }

  /**
   * A new plan billed by the provider: a subscription checkout, the purchase PENDING until the
   * provider says it was paid. One open plan checkout per account: asking again for the same
   * plan returns the open one, another plan closes it first. An unpaid (PAST_DUE) subscription
   * is ended now, as `cancelPlan` would, since the new one replaces it.
   */
  private async openCheckout(tx: Tx, a: AccountPlanRow, target: TierEntity, interval: BillingInterval, purchaseId: string): Promise<PlanOutcome> {
    const subs = this.provider.subscriptions!;
    const price = priceOf(target, interval);
    const open = await tx.query<PurchaseRow>(
      `SELECT * FROM purchases WHERE account_id = $1 AND kind = 'PLAN' AND status = 'PENDING' AND checkout_url IS NOT NULL FOR UPDATE`,
      [a.id],
    );
    for (const p of open) {
      if (p.tier === target.code && p.billing_interval === interval && p.amount_cents === price) {
        return { purchaseId: p.id, checkoutUrl: p.checkout_url!, balance: await this.ledger.balance(a.id, tx) };
      }
      if (!(await subs.expireCheckout(p.provider_ref!))) {
        return { error: { code: UserErrorCode.INVALID_STATE, message: `Your checkout for the ${p.tier} plan was just paid; it starts in a moment` } };
      }
      await tx.query(`UPDATE purchases SET status = 'FAILED', failure_reason = 'replaced by a newer checkout' WHERE id = $1 AND status = 'PENDING'`, [p.id]);
    }
    const r = await subs.checkout({ purchaseId, accountId: a.id, customerRef: a.stripe_customer_id, price: planPrice(target, interval) });
    if (r.status === 'failed') return { error: { code: UserErrorCode.PAYMENT_FAILED, message: `The checkout could not be opened: ${r.reason}` } };
    if (r.status !== 'pending') throw new Error('a subscription checkout must be paid at the provider');
    const subscription = this.billedBy(a);
    if (subscription && a.plan_status === 'PAST_DUE') {
      await subs.cancelNow(subscription);
      await endPlan(tx, a.id);
    }
    await tx.query(
      `INSERT INTO purchases (id, account_id, kind, status, tier, billing_interval, credits, amount_cents, currency, provider, provider_ref, checkout_url, created_at)
       VALUES ($1, $2, 'PLAN', 'PENDING', $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [purchaseId, a.id, target.code, interval, target.monthlyCredits, price, target.currency, this.provider.name, r.ref, r.checkoutUrl, this.clock.now()],
    );
    return { purchaseId, checkoutUrl: r.checkoutUrl, balance: await this.ledger.balance(a.id, tx) };
  }

  /** A new billing period at full price, starting now, with its first month's allowance. */
  private async startPeriod(tx: Tx, a: AccountPlanRow, target: TierEntity, interval: BillingInterval, start: Date, purchaseId: string): Promise<PlanOutcome> {
    const end = addMonths(start, monthsOf(interval));
    const purchase = await this.charge(tx, purchaseId, a.id, target, interval, priceOf(target, interval), target.monthlyCredits, start, end,
      `${target.name} plan, ${interval.toLowerCase()}`);
    if ('error' in purchase) return purchase;
    return { purchaseId: purchase.id, balance: await this.activate(tx, a.id, target, interval, start, end, purchase.id) };
  }

  /** The plan runs from `start` to `end`, with its first month's allowance (once). */
  private async activate(tx: Tx, accountId: string, target: TierEntity, interval: BillingInterval, start: Date, end: Date, purchaseId: string): Promise<BalanceSnapshot | undefined> {
    const monthEnd = addMonths(start, 1) < end ? addMonths(start, 1) : end;
    await tx.query(
      `UPDATE accounts SET tier = $2, billing_interval = $3, plan_status = 'ACTIVE', current_period_start = $4, current_period_end = $5,
              cancel_at_period_end = false, pending_tier = NULL, pending_interval = NULL,
              allowance_period_start = $4, allowance_period_end = $6, low_credit_threshold = GREATEST(low_credit_threshold, $7)
        WHERE id = $1`,
      [accountId, target.code, interval, start, end, monthEnd, target.defaultLowCreditThreshold],
    );
    const balance = await this.grantAllowance(tx, accountId, target, start, monthEnd, purchaseId);
    await this.notify(tx, accountId, 'PURCHASE_COMPLETED', `Welcome to the ${target.name} plan: ${target.monthlyCredits} credits a month, ${target.queueClass.toLowerCase()} queue.`);
    return balance;
  }

  private async upgrade(
    tx: Tx, a: AccountPlanRow, current: TierEntity, target: TierEntity, interval: BillingInterval, now: Date, purchaseId: string,
    scheduled: TierEntity | null,
  ): Promise<PlanOutcome> {
    const billing = a.billing_interval!;
    const credits = this.upgradeCredits(a, current, target, now);
    const subscription = this.billedBy(a);
    let purchase: PurchaseRow | { error: PlanOutcome['error'] };
    if (subscription) {
      // The provider prorates and collects the difference before answering; we record what it charged.
      // It credits the unused time at the item's price: a scheduled lower tier already put the
      // lower price there, so the price of the tier paid for goes back first (no proration), and
      // back to the lower one when the upgrade does not happen.
      const subs = this.provider.subscriptions!;
      if (scheduled) await subs.reprice(subscription, planPrice(current, billing));
      const restore = async () => {
        if (scheduled) await subs.reprice(subscription, planPrice(scheduled, a.pending_interval ?? billing));
      };
      let r: Awaited<ReturnType<typeof subs.upgrade>>;
      try {
        r = await subs.upgrade(subscription, {
          purchaseId,
          price: planPrice(target, billing),
          metadata: { upgradePurchaseId: purchaseId, upgradeTier: target.code },
          // A cancel at the period end is undone by the upgrade, at Stripe in the same update.
          resume: a.cancel_at_period_end,
        });
      } catch (e) {
        await restore().catch((err) => this.log?.error({ err, subscription }, 'could not put the scheduled lower price back after a failed upgrade'));
        throw e;
      }
      if (r.status === 'failed') {
        await restore();
        return { error: { code: UserErrorCode.PAYMENT_FAILED, message: `The payment failed: ${r.reason}` } };
      }
      purchase = await this.record(tx, purchaseId, a.id, target, billing, r.amountCents, credits, now, a.current_period_end!, r.ref);
    } else {
      const periodStart = a.current_period_start!.getTime();
      const periodEnd = a.current_period_end!.getTime();
      const periodLeft = Math.max(0, periodEnd - now.getTime()) / (periodEnd - periodStart);
      const amount = Math.ceil((priceOf(target, billing) - priceOf(current, billing)) * periodLeft);
      purchase = await this.charge(tx, purchaseId, a.id, target, billing, Math.max(0, amount), credits, now, a.current_period_end!,
        `Upgrade to ${target.name} for the rest of the period`);
    }
    if ('error' in purchase) return purchase;
    const balance = await this.applyUpgrade(tx, a, target, interval !== billing ? interval : null, credits, purchase.id);
    return { purchaseId: purchase.id, balance };
  }

  /** Credits of an upgrade: the monthly difference times the share of the allowance month left, rounded down. */
  private upgradeCredits(a: AccountPlanRow, current: TierEntity, target: TierEntity, now: Date): number {
    const monthStart = a.allowance_period_start!.getTime();
    const monthEnd = a.allowance_period_end!.getTime();
    const monthLeft = Math.max(0, monthEnd - now.getTime()) / (monthEnd - monthStart);
    return Math.max(0, Math.floor((target.monthlyCredits - current.monthlyCredits) * monthLeft));
  }

  private async applyUpgrade(tx: Tx, a: AccountPlanRow, target: TierEntity, pendingInterval: BillingInterval | null, credits: number, purchaseId: string): Promise<BalanceSnapshot | undefined> {
    await tx.query('UPDATE accounts SET tier = $2, pending_tier = NULL, pending_interval = $3, cancel_at_period_end = false WHERE id = $1', [
      a.id,
      target.code,
      pendingInterval,
    ]);
    let balance: BalanceSnapshot | undefined;
    if (credits > 0) {
      const g = await this.ledger.grant(tx, {
        accountId: a.id, amount: credits, source: LotSource.MONTHLY_ALLOWANCE, kind: LedgerEntryKind.GRANT,
        description: `Upgrade to ${target.name}: ${credits} more credits for the rest of this month`, expiresAt: a.allowance_period_end, purchaseId,
      });
      balance = g?.balance;
    }
    await this.notify(tx, a.id, 'PURCHASE_COMPLETED', `You are on the ${target.name} plan now: ${credits} more credits for this month.`);
    return balance ?? (await this.ledger.balance(a.id, tx));
  }

  /** Charges through the provider and keeps the purchase (COMPLETED), or says why not (nothing kept). */
  private async charge(
    tx: Tx, id: string, accountId: string, tier: TierEntity, interval: BillingInterval, amountCents: number, credits: number,
    periodStart: Date, periodEnd: Date, description: string,
  ): Promise<PurchaseRow | { error: PlanOutcome['error'] }> {
    let ref: string | null = null;
    if (amountCents > 0) {
      // A provider that bills subscriptions is never charged here (a plan it does not bill cannot renew).
      if (this.provider.subscriptions) {
        return { error: { code: UserErrorCode.PAYMENT_FAILED, message: `This plan is not billed through ${this.provider.name}; subscribe again to renew it` } };
      }
      const r = await this.provider.charge({ purchaseId: id, accountId, amountCents, currency: tier.currency, description });
      if (r.status === 'failed') return { error: { code: UserErrorCode.PAYMENT_FAILED, message: `The payment failed: ${r.reason}` } };
      if (r.status === 'pending') return { error: { code: UserErrorCode.PAYMENT_FAILED, message: 'This provider needs a checkout for plans' } };
      ref = r.ref;
    }
    return this.record(tx, id, accountId, tier, interval, amountCents, credits, periodStart, periodEnd, ref);
  }

  /** Keeps a paid plan purchase (COMPLETED, refundable for 24 hours). */
  private async record(
    tx: Tx, id: string, accountId: string, tier: TierEntity, interval: BillingInterval, amountCents: number, credits: number,
    periodStart: Date, periodEnd: Date, ref: string | null,
  ): Promise<PurchaseRow> {
    const now = this.clock.now();
    const [row] = await tx.query<PurchaseRow>(
      `INSERT INTO purchases (id, account_id, kind, status, tier, billing_interval, credits, amount_cents, currency, provider, provider_ref,
                              created_at, completed_at, refundable_until, period_start, period_end)
       VALUES ($1, $2, 'PLAN', 'COMPLETED', $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13) RETURNING *`,
      [id, accountId, tier.code, interval, credits, amountCents, tier.currency, this.provider.name, ref, now, new Date(now.getTime() + REFUND_WINDOW_MS), periodStart, periodEnd],
    );
    return row;
  }

  /**
   * The provider says a plan checkout was paid: the purchase completes and the plan starts now,
   * with its first month's allowance — once (only a PENDING purchase, or one given up here that
   * the provider says was paid, completes). Inside the webhook's transaction.
   */
  async completeCheckout(
    tx: Tx, paid: { purchaseId: string; accountId: string; subscription: string; customer: string | null; invoice: string | null; checkout: string },
    tiers: TierEntity[],
  ): Promise<boolean> {
    if (!isUuid(paid.purchaseId)) return false;
    // No such account is an answer (nothing to apply); any other error is a fault and propagates,
    // so the transaction is not committed as if applied and the provider delivers the event again.
    const [a] = await tx.query<AccountPlanRow>('SELECT * FROM accounts WHERE id = $1 FOR UPDATE', [paid.accountId]);
    if (!a) return false;
    const start = this.clock.now();
    const [p] = await tx.query<PurchaseRow>(
      `SELECT * FROM purchases WHERE id = $1 AND account_id = $2 AND kind = 'PLAN' AND status IN ('PENDING', 'FAILED') FOR UPDATE`,
      [paid.purchaseId, a.id],
    );
    if (!p) return false;
    const target = tiers.find((t) => t.code === p.tier)!;
    const interval = p.billing_interval!;
    const end = addMonths(start, monthsOf(interval));
    await tx.query(
      `UPDATE purchases SET status = 'COMPLETED', completed_at = $2, refundable_until = $3, provider_ref = $4, period_start = $2, period_end = $5,
              failure_reason = NULL, checkout_url = NULL
        WHERE id = $1`,
      [p.id, start, new Date(start.getTime() + REFUND_WINDOW_MS), paid.invoice ?? paid.checkout, end],
    );
    // Two checkouts paid in a race, or a paid one replacing an unpaid plan: one subscription stays.
    if (a.stripe_subscription_id && a.stripe_subscription_id !== paid.subscription) await this.provider.subscriptions?.cancelNow(a.stripe_subscription_id);
    await tx.query('UPDATE accounts SET stripe_subscription_id = $2, stripe_customer_id = coalesce($3, stripe_customer_id) WHERE id = $1', [
      a.id,
      paid.subscription,
      paid.customer,
    ]);
    // Kept after the plan ends, so an invoice the provider collects late still finds its account.
    await tx.query('INSERT INTO stripe_subscriptions (subscription_id, account_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [
      paid.subscription,
      a.id,
      start,
    ]);
    await this.activate(tx, a.id, target, interval, start, end, p.id);
    return true;
  }

  /**
   * A paid subscription invoice. Its first (`subscription_create`) is the checkout's, which
   * completeCheckout handles. An upgrade's (`subscription_update`) was recorded when the upgrade
   * answered — unless that transaction was lost, and then the upgrade is applied now. A renewal
   * (`subscription_cycle`, and only that: any other reason starts nothing) starts the next period: the purchase (id derived from account and
   * period start, as in the sandbox sweep; provider_ref the invoice) and the period's first
   * month's allowance, keyed by (account, month) in allowance_grants — so an invoice, however
   * often it is delivered, renews once, and a period is never paid or granted twice.
   */
  async renewFromInvoice(tx: Tx, invoice: SubscriptionInvoice, tiers: TierEntity[]): Promise<boolean> {
    const [a] = await tx.query<AccountPlanRow>('SELECT * FROM accounts WHERE stripe_subscription_id = $1 FOR UPDATE', [invoice.subscription]);
    if (!a) return this.paidAfterEnd(tx, invoice, tiers);
    if (a.tier === TierCode.FREE || !a.current_period_end) return false;
    const [seen] = await tx.query(`SELECT 1 FROM purchases WHERE provider = $1 AND provider_ref = $2`, [this.provider.name, invoice.id]);
    if (seen || invoice.billingReason === 'subscription_create') return false;
    if (invoice.billingReason === 'subscription_update') {
      const purchaseId = invoice.metadata.upgradePurchaseId;
      const target = tiers.find((t) => t.code === invoice.metadata.upgradeTier);
      const current = tiers.find((t) => t.code === a.tier)!;
      if (!purchaseId || !isUuid(purchaseId) || !target || target.rank <= current.rank || a.plan_status !== 'ACTIVE') return false;
      const [known] = await tx.query('SELECT 1 FROM purchases WHERE id = $1', [purchaseId]);
      if (known) return false;
      const now = this.clock.now();
      const credits = this.upgradeCredits(a, current, target, now);
      const p = await this.record(tx, purchaseId, a.id, target, a.billing_interval!, invoice.amountPaid, credits, now, a.current_period_end, invoice.id);
      await this.applyUpgrade(tx, a, target, null, credits, p.id);
      return true;
    }
    if (invoice.billingReason !== 'subscription_cycle') {
      // Not a period's renewal (a manual or threshold invoice, …): the event is recorded, nothing starts.
      this.log?.warn({ account: a.id, invoice: invoice.id, billingReason: invoice.billingReason }, 'paid subscription invoice that is not a renewal: no period started');
      return false;
    }
    if (a.cancel_at_period_end) {
      // Cancelled after the provider had started its next period (the cancel applies to that
      // one there): the period is not given here — the plan ends at its period end as asked —
      // so what the provider collected for it goes back.
      const current = tiers.find((t) => t.code === a.tier)!;
      return this.refundInvoice(tx, a.id, invoice, current, a.billing_interval, 'the plan was cancelled before this renewal');
    }
    const next = tiers.find((t) => t.code === (a.pending_tier ?? a.tier))!;
    const interval = a.billing_interval!;
    const start = a.current_period_end;
    const end = addMonths(start, monthsOf(interval));
    const now = this.clock.now();
    const [p] = await tx.query<PurchaseRow>(
      `INSERT INTO purchases (id, account_id, kind, status, tier, billing_interval, credits, amount_cents, currency, provider, provider_ref,
                              created_at, completed_at, refundable_until, period_start, period_end)
       VALUES ($1, $2, 'PLAN', 'COMPLETED', $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13) ON CONFLICT DO NOTHING RETURNING *`,
      [derivedId('renewal', a.id, start.toISOString()), a.id, next.code, interval, next.monthlyCredits, invoice.amountPaid, next.currency,
        this.provider.name, invoice.id, now, new Date(now.getTime() + REFUND_WINDOW_MS), start, end],
    );
    if (!p) return false;
    const monthEnd = addMonths(start, 1) < end ? addMonths(start, 1) : end;
    await tx.query(
      `UPDATE accounts SET tier = $2, plan_status = 'ACTIVE', current_period_start = $3, current_period_end = $4, pending_tier = NULL,
              pending_interval = NULL, cancel_at_period_end = false, allowance_period_start = $3, allowance_period_end = $5 WHERE id = $1`,
      [a.id, next.code, start, end, monthEnd],
    );
    await this.grantAllowance(tx, a.id, next, start, monthEnd, p.id);
    await this.notify(tx, a.id, 'PLAN_RENEWED', `Your ${next.name} plan renewed: ${next.monthlyCredits} fresh credits; unused ones from last month expired.`);
    return true;
  }

  /**
   * A renewal invoice paid for a subscription whose plan ended here (the account no longer holds
   * it: cancelled at the period end while the provider had already started its next period,
   * refunded, ended by the provider, or replaced): no period is given for it, so the payment is
   * refunded in full — once per invoice, found through the subscription's owner.
   */
  private async paidAfterEnd(tx: Tx, invoice: SubscriptionInvoice, tiers: TierEntity[]): Promise<boolean> {
    if (invoice.billingReason !== 'subscription_cycle' || invoice.amountPaid <= 0) return false;
    const [owner] = await tx.query<{ account_id: string }>('SELECT account_id FROM stripe_subscriptions WHERE subscription_id = $1', [invoice.subscription]);
    if (!owner) return false;
    const a = await this.lock(tx, owner.account_id);
    const [last] = await tx.query<{ tier: TierCode; billing_interval: BillingInterval | null }>(
      `SELECT tier, billing_interval FROM purchases WHERE account_id = $1 AND kind = 'PLAN' AND completed_at IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT 1`,
      [a.id],
    );
    return this.refundInvoice(tx, a.id, invoice, (last && tiers.find((t) => t.code === last.tier)) || null, last?.billing_interval ?? null, 'your plan had already ended');
  }

  /**
   * Gives back what the provider collected on an invoice that pays for no period here: a plan
   * purchase of it (no credits) REFUNDED, its refund APPROVED, the money back through the
   * provider, a REFUND_DECIDED notification. Once per invoice (its purchase id and provider_ref).
   */
  private async refundInvoice(
    tx: Tx, accountId: string, invoice: SubscriptionInvoice, tier: TierEntity | null, interval: BillingInterval | null, why: string,
  ): Promise<boolean> {
    const now = this.clock.now();
    const currency = (invoice.currency ?? tier?.currency ?? 'USD').trim().toUpperCase();
    const [p] = await tx.query<PurchaseRow>(
      `INSERT INTO purchases (id, account_id, kind, status, tier, billing_interval, credits, amount_cents, currency, provider, provider_ref, created_at, completed_at)
       VALUES ($1, $2, 'PLAN', 'REFUNDED', $3, $4, 0, $5, $6, $7, $8, $9, $9) ON CONFLICT DO NOTHING RETURNING *`,
      [derivedId('invoice-refunded', accountId, invoice.id), accountId, tier?.code ?? null, interval, invoice.amountPaid, currency, this.provider.name, invoice.id, now],
    );
    if (!p) return false;
    const refund = invoice.amountPaid > 0 ? await this.provider.refund(invoice.id, invoice.amountPaid) : undefined;
    await tx.query(
      `INSERT INTO refund_requests (purchase_id, account_id, status, amount_cents, credits_revoked, decision_reason, provider_ref, created_at, decided_at)
       VALUES ($1, $2, 'APPROVED', $3, 0, $4, $5, $6, $6)`,
      [p.id, accountId, invoice.amountPaid, `Collected by Stripe for a period not given (${why}): refunded in full`, refund?.ref ?? null, now],
    );
    await this.notify(tx, accountId, 'REFUND_DECIDED',
      `Stripe collected ${(invoice.amountPaid / 100).toFixed(2)} ${currency} for a new period of your ${tier?.name ?? 'paid'} plan after ${why}; it was refunded in full.`);
    return true;
  }

  /**
   * A renewal invoice failed: the plan is PAST_DUE (FREE features, no allowance) until the
   * provider collects it (then renewFromInvoice) or gives up (subscriptionEnded). A failure of
   * an invoice that was paid since, or of a checkout's or an upgrade's invoice, changes nothing.
   */
  async invoiceFailed(tx: Tx, invoice: SubscriptionInvoice): Promise<boolean> {
    if (invoice.billingReason === 'subscription_create' || invoice.billingReason === 'subscription_update') return false;
    const [a] = await tx.query<AccountPlanRow>('SELECT * FROM accounts WHERE stripe_subscription_id = $1 FOR UPDATE', [invoice.subscription]);
    if (!a || a.tier === TierCode.FREE || a.plan_status !== 'ACTIVE') return false;
    const [paid] = await tx.query(`SELECT 1 FROM purchases WHERE provider = $1 AND provider_ref = $2`, [this.provider.name, invoice.id]);
    if (paid) return false;
    await tx.query(`UPDATE accounts SET plan_status = 'PAST_DUE' WHERE id = $1`, [a.id]);
    return true;
  }

  /** The provider ended the subscription (cancelled at the period end, or unpaid for too long): the plan ends now. */
  async subscriptionEnded(tx: Tx, subscription: string, tiers: TierEntity[]): Promise<boolean> {
    const [a] = await tx.query<AccountPlanRow>('SELECT * FROM accounts WHERE stripe_subscription_id = $1 FOR UPDATE', [subscription]);
    if (!a) return false;
    const tier = tiers.find((t) => t.code === a.tier)!;
    await endPlan(tx, a.id);
    const free = tiers.find((t) => t.code === TierCode.FREE)!;
    if (free.monthlyCredits > 0) await this.freeMonth(tx, a.id, free, this.clock.now());
    await this.notify(tx, a.id, 'PLAN_ENDED', `Your ${tier.name} plan ended; you are on the Free plan now.`);
    return true;
  }

  /** The allowance of one month, once per account and month (the grant record's key). */
  private async grantAllowance(tx: Tx, accountId: string, tier: TierEntity, start: Date, end: Date, purchaseId: string | null): Promise<BalanceSnapshot | undefined> {
    const inserted = await tx.query(
      `INSERT INTO allowance_grants (account_id, period_start, period_end, tier, credits, purchase_id, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING 1`,
      [accountId, start, end, tier.code, tier.monthlyCredits, purchaseId, this.clock.now()],
    );
    // A month that already ended (renewals caught up after downtime) is recorded but grants nothing.
    if (!inserted.length || tier.monthlyCredits === 0 || end <= this.clock.now()) return this.ledger.balance(accountId, tx);
    const g = await this.ledger.grant(tx, {
      accountId, amount: tier.monthlyCredits, source: LotSource.MONTHLY_ALLOWANCE, kind: LedgerEntryKind.GRANT,
      description: `${tier.name} plan: ${tier.monthlyCredits} credits for the month from ${start.toISOString().slice(0, 10)}`, expiresAt: end, purchaseId,
    });
    return g?.balance;
  }

  /**
   * A month of the FREE tier's own allowance (when the catalog gives FREE monthly credits),
   * starting at `start`; it renews like a paid plan's, without a charge.
   */
  async freeMonth(tx: Tx, accountId: string, free: TierEntity, start: Date): Promise<void> {
    const end = addMonths(start, 1);
    await tx.query(
      `UPDATE accounts SET allowance_period_start = $2, allowance_period_end = $3, plan_status = 'ACTIVE' WHERE id = $1 AND tier = 'FREE'`,
      [accountId, start, end],
    );
    await this.grantAllowance(tx, accountId, free, start, end, null);
  }

  private async notify(tx: Tx, accountId: string, kind: string, message: string): Promise<void> {
    await tx.query('INSERT INTO notifications (account_id, kind, message, created_at) VALUES ($1, $2, $3, $4)', [accountId, kind, message, this.clock.now()]);
  }

  /**
   * Runs what fell due: new allowance months inside billing periods, and period ends (renew,
   * switch, or end the plan). Each account is taken with SKIP LOCKED and re-checked under its
   * lock, and each month's grant is keyed, so every instance may run this at once.
   */
  async renewDue(): Promise<number> {
    let done = 0;
    const failed = new Set<string>();
    for (let round = 0; round < 1000; round++) {
      const now = this.clock.now();
      // Read before the transactions: a catalog reload inside one would wait for a second connection.
      const tiers = await this.catalog.tiers();
      const due = (await this.db.query(
        `SELECT id FROM accounts WHERE ${DUE} ORDER BY least(current_period_end, allowance_period_end) LIMIT 200`,
        [now],
      )) as { id: string }[];
      let progressed = 0;
      for (const { id } of due) {
        if (failed.has(id)) continue;
        try {
          // One account per transaction: a failure stays with its account.
          const stepped = await transaction(this.db, async (tx) => {
            const [a] = await tx.query<AccountPlanRow>(`SELECT * FROM accounts WHERE id = $2 AND ${DUE} FOR UPDATE SKIP LOCKED`, [now, id]);
            if (!a) return false;
            await this.advance(tx, a, now, tiers);
            return true;
          });
          if (stepped) progressed++;
        } catch (e) {
          failed.add(id);
          this.log?.error({ err: e, account: id }, 'renewal step failed; the account is retried on the next run');
        }
      }
      done += progressed;
      if (progressed === 0) break;
    }
    return done;
  }

  /** One step for one account: the next allowance month, or the period end. */
  private async advance(tx: Tx, a: AccountPlanRow, now: Date, tiers: TierEntity[]): Promise<void> {
    const tier = tiers.find((t) => t.code === a.tier)!;
    if (!a.current_period_end) {
      // FREE with monthly credits in the catalog: a new month, no billing period.
      if (!a.allowance_period_end || a.allowance_period_end > now) return;
      await this.freeMonth(tx, a.id, tier, a.allowance_period_end);
      return;
    }
    const periodEnd = a.current_period_end;
    if (a.allowance_period_end! < periodEnd && a.allowance_period_end! <= now) {
      const { start, end } = nextAllowanceMonth(a.current_period_start!, periodEnd, a.allowance_period_end!);
      await tx.query('UPDATE accounts SET allowance_period_start = $2, allowance_period_end = $3 WHERE id = $1', [a.id, start, end]);
      // Months inside a billing period belong to the purchase that paid for it (a refund withdraws them).
      const [first] = await tx.query<{ purchase_id: string | null }>(
        'SELECT purchase_id FROM allowance_grants WHERE account_id = $1 AND period_start = $2',
        [a.id, a.current_period_start],
      );
      await this.grantAllowance(tx, a.id, tier, start, end, first?.purchase_id ?? null);
      return;
    }
    if (periodEnd > now) return;
    if (a.cancel_at_period_end) {
      // Also for a plan the provider bills: it was told to stop at the period end, nothing is charged.
      await endPlan(tx, a.id);
      const free = tiers.find((t) => t.code === TierCode.FREE)!;
      if (free.monthlyCredits > 0) await this.freeMonth(tx, a.id, free, periodEnd);
      await this.notify(tx, a.id, 'PLAN_ENDED', `Your ${tier.name} plan ended as you asked; you are on the Free plan now.`);
      return;
    }
    // A plan the provider bills renews when its renewal invoice is paid (renewFromInvoice), never here.
    if (this.billedBy(a)) return;
    const next = tiers.find((t) => t.code === (a.pending_tier ?? a.tier))!;
    const interval = a.pending_interval ?? a.billing_interval!;
    const start = periodEnd;
    const end = addMonths(start, monthsOf(interval));
    const purchase = await this.charge(tx, derivedId('renewal', a.id, start.toISOString()), a.id, next, interval, priceOf(next, interval), next.monthlyCredits, start, end,
      `${next.name} plan renewal, ${interval.toLowerCase()}`);
    if ('error' in purchase) {
      await tx.query(`UPDATE accounts SET plan_status = 'PAST_DUE' WHERE id = $1`, [a.id]);
      return;
    }
    const monthEnd = addMonths(start, 1) < end ? addMonths(start, 1) : end;
    await tx.query(
      `UPDATE accounts SET tier = $2, billing_interval = $3, current_period_start = $4, current_period_end = $5, pending_tier = NULL,
              pending_interval = NULL, allowance_period_start = $4, allowance_period_end = $6 WHERE id = $1`,
      [a.id, next.code, interval, start, end, monthEnd],
    );
    await this.grantAllowance(tx, a.id, next, start, monthEnd, purchase.id);
    await this.notify(tx, a.id, 'PLAN_RENEWED', `Your ${next.name} plan renewed: ${next.monthlyCredits} fresh credits; unused ones from last month expired.`);
  }
}
