/**
 * The refund policy as pure decisions (API.md "Purchases and refunds", "Billing corrections"):
 * what a request gets, and what an admin's approval may still pay at decision time.
 */
import { UserErrorCode } from '../../common/errors/user-error-code.enum';
import { BillingInterval } from '../catalog/catalog.enums';
import { annualRefund } from '../billing/plans/plan-price';
import { PurchaseKind, type PurchaseRow } from '../billing/purchase.type';

export type RequestDecision =
  | { kind: 'full' }
  | { kind: 'review'; cents: number; why: string }
  | { kind: 'deny'; code: UserErrorCode; why: string };

const cents = (c: number, currency: string) => `${(c / 100).toFixed(2)} ${currency.trim()}`;

/** A request for `p` at `now`, `used` credits having been spent since it (net of refunded jobs). */
export function decideRequest(p: PurchaseRow, now: Date, used: number, monthlyPriceCents: number): RequestDecision {
  if (now.getTime() <= p.refundable_until!.getTime()) {
    if (used === 0) return { kind: 'full' };
    return { kind: 'deny', code: UserErrorCode.CREDITS_ALREADY_USED, why: `${used} ${used === 1 ? 'credit was' : 'credits were'} used since the purchase; it is no longer refundable` };
  }
  if (p.kind === PurchaseKind.PLAN && p.billing_interval === BillingInterval.ANNUAL) {
    const share = annualRefund(p.amount_cents, monthlyPriceCents, p.period_start!, p.period_end!, now);
    if (share.cents > 0) {
      return {
        kind: 'review',
        cents: share.cents,
        why: `Annual plan past the 24-hour window: ${share.started} of ${share.total} months started at ${cents(monthlyPriceCents, p.currency)} each; ` +
          `${cents(share.cents, p.currency)} of ${cents(p.amount_cents, p.currency)} proposed for a partial refund, the plan ending with its current month; an admin decides`,
      };
    }
  }
  return { kind: 'deny', code: UserErrorCode.REFUND_WINDOW_EXPIRED, why: `Refunds are possible within 24 hours of a purchase; this one completed at ${p.completed_at!.toISOString()}` };
}

/**
 * An approval re-checked at decision time: the purchase must still be the account's current plan
 * purchase and something must be left to refund; never more than was proposed.
 */
export function decideApproval(
  p: PurchaseRow, proposedCents: number, current: boolean, now: Date, monthlyPriceCents: number,
): { cents: number } | { deny: string } {
  if (!current) return { deny: 'This purchase is no longer your current plan purchase; nothing was refunded' };
  const left = annualRefund(p.amount_cents, monthlyPriceCents, p.period_start!, p.period_end!, now).cents;
  const amount = Math.min(proposedCents, left);
  if (amount <= 0) return { deny: 'Nothing is left to refund: every month of the year has started; nothing was refunded' };
  return { cents: amount };
}
