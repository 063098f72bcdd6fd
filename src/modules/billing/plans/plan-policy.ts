/**
 * The plan policy, pure: `decide(state, command, now, tiers)` says what a command does to a plan
 * — the plan columns it changes, the purchases it opens or completes, the allowance it grants,
 * the provider calls it needs (payment intents, made after commit), the notices it sends — or
 * why it is refused. It reads no database and calls no provider; plan-store.ts applies it.
 *
 * Rules (docs/BILLING.md): a new plan starts when its first payment is made; an upgrade takes
 * effect at once when its prorated charge is paid (credits: the monthly difference × the share
 * of the allowance month left); a lower tier and a cancellation take effect at the period end;
 * the interval of a running plan does not change (cancel, then subscribe again); each period
 * after the first starts when the provider's renewal invoice is paid, a failed one makes the plan
 * PAST_DUE (FREE features, no allowance) until paid; the allowance comes monthly in both
 * intervals; a refund ends the plan (or takes an upgrade back, or ends an annual plan with its
 * current month).
 */
import { UserErrorCode } from '../../../common/errors/user-error-code.enum';
import { derivedId } from '../../../common/ids';
import { TierCode, type BillingInterval } from '../../catalog/catalog.enums';
import type { TierEntity } from '../../catalog/tier.entity';
import type { IntentSpec } from '../payment-intents';
import { addMonths, allowanceExpiry, anchoredPeriodEnd, firstMonthEnd, nextAllowanceMonth, periodEnd } from './plan-calendar';
import type { Notice, PlanCommand, PlanDecision, PlanError, Tiers } from './plan-decision';
import type { PlanEnd } from '../../notifications/notices';
import { planPrice, priceOf, upgradeChargeCents, upgradeCredits, type PlanPrice } from './plan-price';
import type { PlanState } from './plan-state';

export type { NewPlanPurchase, Notice, OpenCheckout, PlanChanges, PlanCommand, PlanDecision, PlanError, Tiers } from './plan-decision';

const billed = (i: BillingInterval) => (i === 'ANNUAL' ? 'annually' : 'monthly');

const ended = (plan: TierEntity, how: PlanEnd): Notice => ({ template: 'planEnded', params: { plan: plan.name, how } });
const none = (): PlanDecision => ({ grants: [], calls: [], notices: [] });
const refuse = (code: UserErrorCode, message: string, field?: string[]): PlanDecision => ({ ...none(), error: { code, message, field } });

export function decide(s: PlanState, c: PlanCommand, now: Date, tiers: Tiers): PlanDecision {
  const tier = (code: TierCode) => {
    const t = tiers.get(code);
    if (!t) throw new Error(`tier ${code} is not in the catalog`);
    return t;
  };
  const current = tier(s.tier);
  const paid = s.tier !== TierCode.FREE;
  // The provider has started its next period but not said it was paid: a change told to it now
  // would apply to that next period, not to the one ending, so none is taken until it is settled.
  const renewing = paid && s.status === 'ACTIVE' && !!s.subscription && !!s.periodEnd && s.periodEnd <= now && !s.cancelAtPeriodEnd;
  // Cancelled, and its period is over: it is being closed (the sweep, or the provider's word, ends it in a moment).
  const ending = paid && s.status === 'ACTIVE' && s.cancelAtPeriodEnd && !!s.periodEnd && s.periodEnd <= now;
  const endingError = () => refuse(UserErrorCode.INVALID_STATE, 'Your plan ended at its period end and is being closed; try again in a moment');
  const renewingError = () => refuse(UserErrorCode.INVALID_STATE, 'Your plan’s renewal is in progress at the payment provider; try again in a few minutes, once it is settled');
  const call = (kind: IntentSpec['kind'], key: string, payload: Record<string, unknown> = {}): IntentSpec => ({ kind, payload: { key, subscription: s.subscription, ...payload } });
  const price = (t: TierEntity, i: BillingInterval): PlanPrice => planPrice(t, i);

  // One plan payment at a time: a change decided now would be decided on a plan about to change.
  const inFlight = () => refuse(UserErrorCode.INVALID_STATE, 'A payment for your plan is in progress; try again in a moment');

  switch (c.type) {
    case 'change': {
      if (c.tier === TierCode.FREE) return decide(s, { type: 'cancel' }, now, tiers);
      if (s.changeInFlight) return inFlight();
      const target = tier(c.tier);
      if (!paid || s.status !== 'ACTIVE') {
        // A new plan: its subscription starts when the first payment is made.
        const amount = priceOf(target, c.interval);
        if (c.openCheckout && c.openCheckout.tier === c.tier && c.openCheckout.interval === c.interval && c.openCheckout.amountCents === amount) {
          return { ...none(), reuse: c.openCheckout };
        }
        const d: PlanDecision = {
          ...none(),
          fail: c.openCheckout ? { id: c.openCheckout.id, reason: 'replaced by a newer checkout' } : undefined,
          purchase: {
            id: c.purchaseId, status: 'PENDING', tier: c.tier, interval: c.interval, credits: target.monthlyCredits, amountCents: amount,
            currency: target.currency, ref: null, periodStart: null, periodEnd: null,
          },
        };
        if (paid && s.status === 'PAST_DUE') {
          // The unpaid plan is replaced: it ends now, and its subscription stops collecting.
          d.end = true;
          if (s.subscription) d.calls.push(call('subscription.cancel_now', `cancel-now-${c.purchaseId}`));
        }
        d.calls.push({
          kind: 'plan.subscribe',
          payload: { key: `plan-checkout-${c.purchaseId}`, purchaseId: c.purchaseId, accountId: s.accountId, customerRef: s.customer, price: price(target, c.interval) },
        });
        return d;
      }
      if (renewing) return renewingError();
      if (ending) return endingError();
      if (c.tier === s.tier && c.interval === s.interval) {
        if (!s.cancelAtPeriodEnd && !s.pendingTier && !s.pendingInterval) {
          return refuse(UserErrorCode.INVALID_STATE, `You are already on the ${target.name} plan, billed ${billed(c.interval)}`);
        }
        // Back to the plan as it is: whatever was scheduled is undone.
        const d: PlanDecision = { ...none(), changes: { cancelAtPeriodEnd: false, pendingTier: null, pendingInterval: null } };
        if (s.cancelAtPeriodEnd) d.calls.push(call('subscription.cancel_at_period_end', `resume-${c.purchaseId}`, { cancel: false }));
        if (s.pendingTier && s.pendingTier !== s.tier) d.calls.push(call('subscription.reprice', `reprice-${c.purchaseId}`, { price: price(current, s.interval!) }));
        return d;
      }
      if (c.interval !== s.interval) {
        return refuse(
          UserErrorCode.INVALID_STATE,
          `Your plan is billed ${billed(s.interval!)} and its interval cannot be changed while it runs; cancel it and subscribe again when it ends`,
          ['input', 'interval'],
        );
      }
      if (target.rank > current.rank) {
        // An upgrade: at once, when the provider has collected its prorated charge.
        const scheduled = s.pendingTier && s.pendingTier !== s.tier ? tier(s.pendingTier) : null;
        const d: PlanDecision = {
          ...none(),
          purchase: {
            id: c.purchaseId, status: 'PENDING', tier: c.tier, interval: s.interval, credits: upgradeCredits(current, target, s.monthStart!, s.monthEnd!, now),
            amountCents: 0, currency: target.currency, ref: null, periodStart: now, periodEnd: s.periodEnd,
          },
        };
        // The provider credits the unused time at the item's price: a scheduled lower tier put the
        // lower price there, so the price paid for goes back first (no proration).
        if (scheduled) d.calls.push(call('subscription.reprice', `reprice-${c.purchaseId}`, { price: price(current, s.interval!) }));
        d.calls.push(call('plan.upgrade', `plan-upgrade-${c.purchaseId}`, {
          purchaseId: c.purchaseId, price: price(target, s.interval!), metadata: { upgradePurchaseId: c.purchaseId, upgradeTier: c.tier }, resume: s.cancelAtPeriodEnd,
        }));
        return d;
      }
      // A lower tier: from the next period; the provider charges its price from the next renewal.
      const d: PlanDecision = { ...none(), changes: { pendingTier: c.tier, pendingInterval: c.interval, cancelAtPeriodEnd: false } };
      if (s.cancelAtPeriodEnd) d.calls.push(call('subscription.cancel_at_period_end', `resume-${c.purchaseId}`, { cancel: false }));
      d.calls.push(call('subscription.reprice', `reprice-${c.purchaseId}`, { price: price(target, c.interval) }));
      return d;
    }

    case 'cancel': {
      if (s.changeInFlight) return inFlight();
      const key = `cancel-${s.accountId}-${now.toISOString()}`;
      if (paid && s.status === 'PAST_DUE') {
        // Unpaid: nothing left to run to; it ends now, and the provider stops collecting.
        const d: PlanDecision = { ...none(), end: true, notices: [ended(current, 'unpaidAsked')] };
        if (s.subscription) d.calls.push(call('subscription.cancel_now', key));
        return d;
      }
      if (!paid || s.status !== 'ACTIVE') return refuse(UserErrorCode.INVALID_STATE, 'There is no paid plan to cancel');
      if (renewing) return renewingError();
      if (ending) return endingError();
      const d: PlanDecision = { ...none(), changes: { cancelAtPeriodEnd: true, pendingTier: null, pendingInterval: null } };
      d.calls.push(call('subscription.cancel_at_period_end', key, { cancel: true }));
      if (s.pendingTier && s.pendingTier !== s.tier) d.calls.push(call('subscription.reprice', `${key}-reprice`, { price: price(current, s.interval!) }));
      return d;
    }

    case 'subscriptionPaid': {
      const target = tier(c.purchase.tier);
      const start = now;
      const end = periodEnd(start, c.purchase.interval);
      const monthEnd = firstMonthEnd(start, end);
      const d: PlanDecision = {
        ...none(),
        complete: { id: c.purchase.id, ref: c.ref, periodStart: start, periodEnd: end },
        changes: {
          tier: c.purchase.tier, interval: c.purchase.interval, status: 'ACTIVE', periodStart: start, periodEnd: end, periodAnchor: start, monthStart: start, monthEnd,
          cancelAtPeriodEnd: false, pendingTier: null, pendingInterval: null, subscription: c.subscription, customer: c.customer ?? s.customer,
          lowCreditThreshold: target.defaultLowCreditThreshold,
        },
        grants: [{ start, end: monthEnd, tier: target.code, credits: target.monthlyCredits, purchaseId: c.purchase.id, label: target.name, expiresAt: allowanceExpiry(start, monthEnd, target.rolloverMonths) }],
        notices: [{ template: 'planStarted', params: { plan: target.name, monthlyCredits: target.monthlyCredits, queue: target.queueClass } }],
      };
      // Two checkouts paid in a race, or a paid one replacing an unpaid plan: one subscription stays.
      if (s.subscription && s.subscription !== c.subscription) d.calls.push(call('subscription.cancel_now', `cancel-now-${c.purchase.id}`));
      return d;
    }

    case 'upgradePaid': {
      const target = tier(c.purchase.tier);
      if (s.status !== 'ACTIVE' || !paid || target.rank <= current.rank) return none();
      const credits = c.purchase.credits ?? upgradeCredits(current, target, s.monthStart!, s.monthEnd!, now);
      return {
        ...none(),
        complete: { id: c.purchase.id, ref: c.ref, amountCents: c.amountCents, periodStart: now, periodEnd: s.periodEnd! },
        purchase: c.purchase.credits === null
          ? { id: c.purchase.id, status: 'COMPLETED', tier: target.code, interval: s.interval, credits, amountCents: c.amountCents, currency: target.currency, ref: c.ref, periodStart: now, periodEnd: s.periodEnd }
          : undefined,
        changes: { tier: target.code, pendingTier: null, pendingInterval: null, cancelAtPeriodEnd: false },
        topUp: credits > 0 ? { credits, expiresAt: allowanceExpiry(s.periodAnchor ?? s.periodStart!, s.monthEnd!, target.rolloverMonths), purchaseId: c.purchase.id, description: `Upgrade to ${target.name}: ${credits} more credits for the rest of this month` } : undefined,
        notices: [{ template: 'planUpgraded', params: { plan: target.name, credits } }],
      };
    }

    case 'upgradeRefused': {
      const d: PlanDecision = { ...none(), fail: { id: c.purchaseId, reason: c.reason } };
      // The price paid for went back on the item before the upgrade: the scheduled lower one returns.
      if (s.pendingTier && s.pendingTier !== s.tier && s.interval) {
        d.calls.push(call('subscription.reprice', `restore-${c.purchaseId}`, { price: price(tier(s.pendingTier), s.pendingInterval ?? s.interval) }));
      }
      return d;
    }

    case 'renewalPaid': {
      if (!paid || !s.periodEnd) return none();
      if (s.cancelAtPeriodEnd) {
        // Cancelled after the provider had started its next period: that period is not given here
        // (the plan ends at its period end as asked), so what was collected for it goes back.
        return { ...none(), refundInvoice: { invoice: c.invoice, why: 'the plan was cancelled before this renewal' } };
      }
      const next = tier(s.pendingTier ?? s.tier);
      const start = s.periodEnd;
      const anchor = s.periodAnchor ?? s.periodStart ?? start;
      const end = anchoredPeriodEnd(anchor, start, s.interval!);
      const monthEnd = firstMonthEnd(start, end, anchor);
      const id = derivedId('renewal', s.accountId, start.toISOString());
      return {
        ...none(),
        purchase: { id, status: 'COMPLETED', tier: next.code, interval: s.interval, credits: next.monthlyCredits, amountCents: c.invoice.amountPaid, currency: next.currency, ref: c.invoice.id, periodStart: start, periodEnd: end },
        changes: { tier: next.code, status: 'ACTIVE', periodStart: start, periodEnd: end, monthStart: start, monthEnd, pendingTier: null, pendingInterval: null, cancelAtPeriodEnd: false },
        grants: [{ start, end: monthEnd, tier: next.code, credits: next.monthlyCredits, purchaseId: id, label: next.name, expiresAt: allowanceExpiry(anchor, monthEnd, next.rolloverMonths) }],
        notices: [{ template: 'planRenewed', params: { plan: next.name, monthlyCredits: next.monthlyCredits, rolloverMonths: next.rolloverMonths } }],
      };
    }

    case 'renewalFailed':
      if (!paid || s.status !== 'ACTIVE') return none();
      return { ...none(), changes: { status: 'PAST_DUE' } };

    case 'subscriptionEnded':
      // Ended as asked (cancelled at the period end), or by the provider (unpaid for too long).
      if (s.cancelAtPeriodEnd) return endNow(s, tiers, s.periodEnd && s.periodEnd < now ? s.periodEnd : now, ended(current, 'asked'));
      return endNow(s, tiers, now, ended(current, 'ended'));

    case 'timePassed': {
      if (s.status !== 'ACTIVE') return none();
      if (!s.periodEnd) {
        // FREE with monthly credits in the catalog: a new month, no billing period.
        if (!s.monthEnd || s.monthEnd > now) return none();
        // The catalog stopped giving FREE monthly credits: no more months.
        if (current.monthlyCredits <= 0) return { ...none(), changes: { monthStart: null, monthEnd: null } };
        return freeMonth(current, s.monthEnd);
      }
      if (s.monthEnd! < s.periodEnd && s.monthEnd! <= now) {
        const anchor = s.periodAnchor ?? s.periodStart!;
        const m = nextAllowanceMonth(anchor, s.periodEnd, s.monthEnd!);
        return {
          ...none(),
          changes: { monthStart: m.start, monthEnd: m.end },
          // Months inside a billing period belong to the purchase that paid for it (a refund withdraws them).
          grants: [{ start: m.start, end: m.end, tier: s.tier, credits: current.monthlyCredits, purchaseId: c.periodPurchaseId, label: current.name, expiresAt: allowanceExpiry(anchor, m.end, current.rolloverMonths) }],
        };
      }
      if (s.periodEnd <= now && s.cancelAtPeriodEnd) {
        return endNow(s, tiers, s.periodEnd, ended(current, 'asked'));
      }
      return none(); // the next period starts when the provider says its renewal was paid
    }

    case 'refunded': {
      if (c.scope === 'upgrade') {
        // An upgrade inside the period: back to the tier the period was paid for (its price from the next invoice).
        const back = tier(c.previousTier!);
        const priced = tier(s.pendingTier ?? back.code);
        return { ...none(), changes: { tier: back.code }, calls: s.subscription ? [call('subscription.reprice', `refund-reprice-${s.accountId}-${now.toISOString()}`, { price: price(priced, s.interval!) })] : [] };
      }
      if (c.scope === 'annualShare') {
        // The current month was paid for: the plan runs to its end, then stops, and so does the subscription.
        const d: PlanDecision = { ...none(), changes: { periodEnd: s.monthEnd, cancelAtPeriodEnd: true, pendingTier: null, pendingInterval: null } };
        if (s.subscription) d.calls.push(call('subscription.cancel_at', `cancel-at-${s.accountId}-${now.toISOString()}`, { at: s.monthEnd!.toISOString() }));
        return d;
      }
      const d: PlanDecision = { ...none(), end: true, notices: [ended(current, c.disputed ? 'disputed' : 'refund')] };
      if (s.subscription) d.calls.push(call('subscription.cancel_now', `refund-cancel-${s.accountId}-${now.toISOString()}`));
      return d;
    }
  }
}

/** The plan ends at `at`: FREE again (with the FREE tier's own month, when the catalog gives it credits). */
function endNow(s: PlanState, tiers: Tiers, at: Date, notice: Notice): PlanDecision {
  if (s.tier === TierCode.FREE && !s.subscription) return none();
  const d: PlanDecision = { ...freeMonth(tiers.get(TierCode.FREE)!, at), end: true };
  d.notices.push(notice);
  return d;
}

/** A month of the FREE tier's own allowance from `start` (nothing when the catalog gives FREE none). */
export function freeMonth(free: TierEntity, start: Date): PlanDecision {
  if (free.monthlyCredits <= 0) return none();
  const end = addMonths(start, 1);
  return {
    ...none(),
    changes: { monthStart: start, monthEnd: end, status: 'ACTIVE' },
    grants: [{ start, end, tier: free.code, credits: free.monthlyCredits, purchaseId: null, label: free.name, expiresAt: allowanceExpiry(start, end, free.rolloverMonths) }],
  };
}

/** What a plan change would charge and give, before it is made (planChangePreview). */
export interface PlanPreview {
  amountCents: number;
  currency: string;
  creditsGranted: number;
  effectiveAt: Date;
  error?: PlanError;
}

/**
 * The preview of a change: the same decision changePlan applies (decide), read for its money.
 * A new plan charges its price and grants its first month when paid; an upgrade charges the
 * price difference for the share of the period left (upgradeChargeCents, the rule the
 * providers prorate by) and grants its share of the month's extra credits at once; a lower tier
 * or another interval starts at the period end and charges nothing now; FREE cancels at it.
 */
export function previewOf(s: PlanState, tierCode: TierCode, interval: BillingInterval, decision: PlanDecision, now: Date, tiers: Tiers): PlanPreview {
  const target = tiers.get(tierCode);
  if (!target) throw new Error(`tier ${tierCode} is not in the catalog`);
  const currency = target.currency.trim();
  if (decision.error) return { amountCents: 0, currency, creditsGranted: 0, effectiveAt: now, error: decision.error };
  if (decision.reuse) return { amountCents: decision.reuse.amountCents, currency, creditsGranted: target.monthlyCredits, effectiveAt: now };
  const p = decision.purchase;
  if (p && p.periodStart === null) return { amountCents: p.amountCents, currency, creditsGranted: p.credits, effectiveAt: now };
  if (p) {
    const current = tiers.get(s.tier)!;
    return { amountCents: upgradeChargeCents(current, target, s.interval!, s.periodStart!, s.periodEnd!, now), currency, creditsGranted: p.credits, effectiveAt: now };
  }
  const later = decision.changes?.pendingTier || decision.changes?.cancelAtPeriodEnd;
  return { amountCents: 0, currency, creditsGranted: 0, effectiveAt: later && s.periodEnd ? s.periodEnd : now };
}
