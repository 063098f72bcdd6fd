/**
 * One plan lifecycle for every payment provider. Commands (changePlan, cancelPlan, a refund's
 * effect on the plan) and what the provider tells (a checkout or an invoice paid, a failed
 * renewal, a subscription ended) all go the same way: the plan is read under the account row
 * lock, the pure policy decides, the store applies it in that transaction, and the provider
 * calls it needs run after commit as payment intents (payment-intents.ts) — never while a lock
 * is held. The answers of those calls come back through the intent handlers below.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import type { Clock } from '../../../common/clock';
import { transaction, type Tx } from '../../../common/db/transaction';
import { UserErrorCode } from '../../../common/errors/user-error-code.enum';
import { derivedId, isUuid } from '../../../common/ids';
import type { BillingInterval, TierCode } from '../../catalog/catalog.enums';
import type { CatalogService } from '../../catalog/catalog.service';
import type { TierEntity } from '../../catalog/tier.entity';
import { keyed, keyFor } from '../../../common/idempotency/idempotency';
import type { PaymentProvider, SubscribeResult, UpgradeResult } from '../payment-provider';
import { refusedOr, type IntentRow, type PaymentIntents, type Refused } from '../payment-intents';
import { awaitCheckout, failPending } from '../purchase-writes';
import type { SubscriptionInvoice } from '../provider-events';
import { decide, freeMonth, previewOf, type PlanPreview, type PlanCommand, type PlanDecision, type PlanError, type Tiers } from './plan-policy';
import { priceOf } from './plan-price';
import type { PlanStore } from './plan-store';

export interface PlanOutcome {
  purchaseId?: string;
  /** Where to pay, when the plan starts only once the provider's checkout is paid. */
  checkoutUrl?: string;
  error?: PlanError;
}

/** What a keyed changePlan keeps under its key: its refusal, or its purchase and provider calls. */
interface Kept {
  error?: PlanError;
  purchaseId?: string;
  groupId?: string | null;
}

export const tierMap = (tiers: TierEntity[]): Tiers => new Map(tiers.map((t) => [t.code, t]));

export class PlanLifecycle {
  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly catalog: CatalogService,
    private readonly store: PlanStore,
    private readonly intents: PaymentIntents,
    private readonly provider: PaymentProvider,
    private readonly log: Logger,
  ) {
    this.registerIntents();
  }

  async changePlan(accountId: string, req: { tier: TierCode; interval: BillingInterval; idempotencyKey?: string | null }): Promise<PlanOutcome> {
    const key = keyFor(accountId, req.idempotencyKey, 'changePlan', { tier: req.tier, interval: req.interval });
    // Read before the transaction: a catalog reload inside it would need a second connection.
    const tiers = tierMap(await this.catalog.tiers());
    // One purchase id per request (per key when there is one): the provider's keys derive from it.
    const purchaseId = key ? derivedId('changePlan', accountId, key.key) : randomUUID();
    return keyed<Kept, PlanOutcome>(this.db, key, () => this.clock.now(), {
      // A retry must not charge again: the key is looked up before anything is done.
      prepare: async () => {
        await this.settlePlanPayments(accountId);
        return this.closeOtherCheckout(accountId, req.tier, req.interval, tiers);
      },
      work: async (tx) => {
        const s = await this.store.load(tx, accountId);
        if (!s) throw new Error(`account ${accountId} does not exist`);
        const openCheckout = await this.store.openCheckout(tx, accountId);
        const d = decide(s, { type: 'change', tier: req.tier, interval: req.interval, purchaseId, openCheckout }, this.clock.now(), tiers);
        return d.error ? { error: d.error } : { purchaseId: d.reuse?.id ?? d.purchase?.id, groupId: d.reuse ? null : await this.store.apply(tx, s, d) };
      },
      answer: async (kept) => {
        if (kept.groupId) await this.intents.runGroup(kept.groupId);
        return this.outcome(accountId, kept);
      },
      replay: (kept) => this.replay(accountId, kept),
      // A concurrent duplicate with the key writes the same derived purchase id.
      duplicateOn: ['purchases_pkey'],
    });
  }

  /** What changePlan would charge and give now: the same decision, read without a lock and not applied. */
  async preview(accountId: string, tier: TierCode, interval: BillingInterval): Promise<PlanPreview> {
    const tiers = tierMap(await this.catalog.tiers());
    return transaction(this.db, async (tx) => {
      const s = await this.store.load(tx, accountId, false);
      if (!s) throw new Error(`account ${accountId} does not exist`);
      const openCheckout = await this.store.openCheckout(tx, accountId, false);
      const now = this.clock.now();
      return previewOf(s, tier, interval, decide(s, { type: 'change', tier, interval, purchaseId: randomUUID(), openCheckout }, now, tiers), now, tiers);
    });
  }

  async cancelPlan(accountId: string): Promise<PlanOutcome> {
    const tiers = tierMap(await this.catalog.tiers());
    await this.settlePlanPayments(accountId);
    const kept = await transaction(this.db, async (tx): Promise<Kept> => {
      const s = await this.store.load(tx, accountId);
      if (!s) throw new Error(`account ${accountId} does not exist`);
      const d = decide(s, { type: 'cancel' }, this.clock.now(), tiers);
      return d.error ? { error: d.error } : { groupId: await this.store.apply(tx, s, d) };
    });
    if (kept.groupId) await this.intents.runGroup(kept.groupId);
    return this.outcome(accountId, kept);
  }

  // ---- what the provider tells (inside the event's transaction; intent groups to run after it) ----

  async checkoutPaid(tx: Tx, e: { purchaseId: string; accountId: string; subscription: string; customer: string | null; ref: string }, tiers: Tiers): Promise<string | null> {
    if (!isUuid(e.purchaseId)) return null;
    // No such account is an answer (nothing to apply); any other error is a fault and propagates,
    // so the event is not recorded as applied and the provider delivers it again.
    const s = await this.store.load(tx, e.accountId);
    if (!s) return null;
    const [p] = await tx.query<{ id: string; tier: TierCode; billing_interval: BillingInterval }>(
      `SELECT id, tier, billing_interval FROM purchases WHERE id = $1 AND account_id = $2 AND kind = 'PLAN' AND status IN ('PENDING', 'FAILED') FOR UPDATE`,
      [e.purchaseId, s.accountId],
    );
    if (!p) return null;
    const command: PlanCommand = { type: 'subscriptionPaid', purchase: { id: p.id, tier: p.tier, interval: p.billing_interval }, subscription: e.subscription, customer: e.customer, ref: e.ref };
    return this.store.apply(tx, s, decide(s, command, this.clock.now(), tiers));
  }

  /**
   * A paid subscription invoice: a renewal starts the next period (once per invoice and period);
   * an upgrade's completes that upgrade if its answer was lost; the first one is the checkout's;
   * any other reason starts nothing. A renewal of a subscription whose plan ended here is refunded.
   */
  async invoicePaid(tx: Tx, inv: SubscriptionInvoice, tiers: Tiers): Promise<string | null> {
    const s = await this.store.loadBySubscription(tx, inv.subscription);
    if (!s) {
      if (inv.reason !== 'renewal' || inv.amountPaid <= 0) return null;
      const owner = await this.store.ownerOf(tx, inv.subscription);
      const o = owner ? await this.store.load(tx, owner) : undefined;
      return o ? this.store.apply(tx, o, { grants: [], calls: [], notices: [], refundInvoice: { invoice: inv, why: 'your plan had already ended' } }) : null;
    }
    if (s.tier === 'FREE' || !s.periodEnd || inv.reason === 'create' || (await this.store.knownPayment(tx, inv.id))) return null;
    if (inv.reason === 'upgrade') {
      const purchaseId = inv.metadata.upgradePurchaseId;
      const tier = inv.metadata.upgradeTier as TierCode | undefined;
      if (!purchaseId || !isUuid(purchaseId) || !tier || !tiers.get(tier)) return null;
      const [p] = await tx.query<{ status: string; credits: number }>('SELECT status, credits FROM purchases WHERE id = $1', [purchaseId]);
      if (p && p.status !== 'PENDING') return null;
      const command: PlanCommand = { type: 'upgradePaid', purchase: { id: purchaseId, tier, credits: p ? p.credits : null }, amountCents: inv.amountPaid, ref: inv.id };
      return this.store.apply(tx, s, decide(s, command, this.clock.now(), tiers));
    }
    if (inv.reason !== 'renewal') {
      this.log.warn({ account: s.accountId, invoice: inv.id, billingReason: inv.rawReason }, 'paid subscription invoice that is not a renewal: no period started');
      return null;
    }
    return this.store.apply(tx, s, decide(s, { type: 'renewalPaid', invoice: inv }, this.clock.now(), tiers));
  }

  /** A renewal invoice failed: PAST_DUE until it is paid. A checkout's or an upgrade's, or one paid since, changes nothing. */
  async invoiceFailed(tx: Tx, inv: SubscriptionInvoice, tiers: Tiers): Promise<string | null> {
    if (inv.reason === 'create' || inv.reason === 'upgrade') return null;
    const s = await this.store.loadBySubscription(tx, inv.subscription);
    if (!s || (await this.store.knownPayment(tx, inv.id))) return null;
    return this.store.apply(tx, s, decide(s, { type: 'renewalFailed' }, this.clock.now(), tiers));
  }

  /** The provider ended the subscription (cancelled, or unpaid for too long): the plan ends now. */
  async subscriptionEnded(tx: Tx, subscription: string, tiers: Tiers): Promise<string | null> {
    const s = await this.store.loadBySubscription(tx, subscription);
    if (!s) return null;
    return this.store.apply(tx, s, decide(s, { type: 'subscriptionEnded' }, this.clock.now(), tiers));
  }

  /** A refund's effect on the plan, after the refund's own call (`first`). */
  async refunded(tx: Tx, accountId: string, scope: 'plan' | 'upgrade' | 'annualShare', tiers: Tiers, first: Parameters<PlanStore['apply']>[3], previousTier?: TierCode, disputed = false): Promise<string | null> {
    const s = await this.store.load(tx, accountId);
    if (!s) throw new Error(`account ${accountId} does not exist`);
    return this.store.apply(tx, s, decide(s, { type: 'refunded', scope, previousTier, disputed }, this.clock.now(), tiers), first);
  }

  /** The FREE tier's own month for a new account, when the catalog gives FREE monthly credits. */
  async freeMonth(tx: Tx, accountId: string, free: TierEntity, start: Date): Promise<void> {
    const s = await this.store.load(tx, accountId);
    if (s) await this.store.apply(tx, s, freeMonth(free, start));
  }

  // ---- internals ----

  /**
   * A plan payment still open (another request's, or one a crash left) is driven to its answer
   * first, so this change is decided on the plan as it will be; if the provider cannot answer
   * now, the decision refuses (one plan payment at a time).
   */
  private async settlePlanPayments(accountId: string): Promise<void> {
    for (const group of await this.store.openPlanPayments(this.db, accountId)) {
      await this.intents.runGroup(group, { takeover: true }).catch((err) => this.log.warn({ err, group }, 'an open plan payment could not be settled now'));
    }
  }

  /**
   * One open plan checkout per account: before another plan's, the open one is closed at the
   * provider (no lock held); one that was paid meanwhile cannot be, and is not replaced.
   */
  private async closeOtherCheckout(accountId: string, tier: TierCode, interval: BillingInterval, tiers: Tiers): Promise<PlanOutcome | undefined> {
    const [open] = (await this.db.query(
      `SELECT id, tier, billing_interval, amount_cents, provider_ref FROM purchases WHERE account_id = $1 AND kind = 'PLAN' AND status = 'PENDING' AND checkout_url IS NOT NULL`,
      [accountId],
    )) as { id: string; tier: TierCode; billing_interval: BillingInterval; amount_cents: number; provider_ref: string }[];
    const target = tiers.get(tier);
    if (!open || !target || (open.tier === tier && open.billing_interval === interval && open.amount_cents === priceOf(target, interval))) return undefined;
    if (await this.provider.expireCheckout(open.provider_ref)) return undefined;
    return { error: { code: UserErrorCode.INVALID_STATE, message: `Your checkout for the ${open.tier} plan was just paid; it starts in a moment` } };
  }

  /** A keyed change seen before: its calls driven to their end (taking over a stalled first attempt), then its answer. */
  private async replay(accountId: string, kept: Kept): Promise<PlanOutcome> {
    if (kept.groupId) await this.intents.runGroup(kept.groupId, { takeover: true });
    return this.outcome(accountId, kept);
  }

  private async outcome(accountId: string, kept: Kept): Promise<PlanOutcome> {
    if (kept.error) return { error: kept.error };
    if (!kept.purchaseId) return {};
    const [p] = (await this.db.query('SELECT status, checkout_url, failure_reason FROM purchases WHERE id = $1 AND account_id = $2', [kept.purchaseId, accountId])) as {
      status: string; checkout_url: string | null; failure_reason: string | null;
    }[];
    if (p?.status === 'FAILED') return { purchaseId: kept.purchaseId, error: { code: UserErrorCode.PAYMENT_FAILED, message: `The payment failed: ${p.failure_reason}` } };
    return { purchaseId: kept.purchaseId, checkoutUrl: p?.status === 'PENDING' ? p.checkout_url ?? undefined : undefined };
  }

  private registerIntents(): void {
    const p = this.provider;
    const prepare = async () => tierMap(await this.catalog.tiers());
    this.intents.register('plan.subscribe', {
      prepare,
      call: async (i) => refusedOr(await p.subscribe(i.payload as never, i.payload.key)),
      complete: async (tx, i, result, tiers) => {
        const purchaseId = i.payload.purchaseId as string;
        if ('refused' in (result as object)) return failPending(tx, purchaseId, (result as Refused).refused).then(() => null);
        const r = result as Exclude<SubscribeResult, { status: 'failed' }>;
        if (r.status === 'pending') return awaitCheckout(tx, purchaseId, r.ref, r.checkoutUrl).then(() => null);
        return this.checkoutPaid(tx, { purchaseId, accountId: i.account_id, subscription: r.subscription, customer: r.customer, ref: r.invoice }, tiers as Tiers);
      },
    });
    this.intents.register('plan.upgrade', {
      prepare,
      call: async (i) => refusedOr(await p.upgrade(i.payload.subscription as string, i.payload as never, i.payload.key)),
      complete: async (tx, i, result, tiers) => this.upgradeAnswered(tx, i, result as Exclude<UpgradeResult, { status: 'failed' }> | Refused, tiers as Tiers),
    });
    const noEffect = async () => null;
    this.intents.register('subscription.reprice', { call: (i) => p.reprice(i.payload.subscription as string, i.payload.price as never, i.payload.key), complete: noEffect });
    this.intents.register('subscription.cancel_at_period_end', {
      call: (i) => p.cancelAtPeriodEnd(i.payload.subscription as string, i.payload.cancel as boolean, i.payload.key),
      complete: noEffect,
    });
    // A provider takes only a future end: one already passed (the call was re-driven late) ends it now.
    this.intents.register('subscription.cancel_at', {
      call: (i) => {
        const at = new Date(i.payload.at as string);
        return at > this.clock.now() ? p.cancelAt(i.payload.subscription as string, at, i.payload.key) : p.cancelNow(i.payload.subscription as string, i.payload.key);
      },
      complete: noEffect,
    });
    this.intents.register('subscription.cancel_now', { call: (i) => p.cancelNow(i.payload.subscription as string, i.payload.key), complete: noEffect });
  }

  private async upgradeAnswered(tx: Tx, i: IntentRow, r: Exclude<UpgradeResult, { status: 'failed' }> | Refused, tiers: Tiers): Promise<string | null> {
    const s = await this.store.load(tx, i.account_id);
    if (!s) return null;
    const purchaseId = i.payload.purchaseId as string;
    if ('refused' in r) return this.store.apply(tx, s, decide(s, { type: 'upgradeRefused', purchaseId, reason: r.refused }, this.clock.now(), tiers));
    const [pu] = await tx.query<{ status: string; tier: TierCode; credits: number }>('SELECT status, tier, credits FROM purchases WHERE id = $1', [purchaseId]);
    if (!pu || pu.status !== 'PENDING') return null; // applied already (the provider's invoice webhook came first)
    const d: PlanDecision = decide(s, { type: 'upgradePaid', purchase: { id: purchaseId, tier: pu.tier, credits: pu.credits }, amountCents: r.amountCents, ref: r.ref }, this.clock.now(), tiers);
    return this.store.apply(tx, s, d);
  }
}
