/**
 * Plan prices and the money rules on them, one place for plans and refunds: what a period
 * costs, what an upgrade charges and grants, what an annual plan gives back.
 */
import { BillingInterval } from '../../catalog/catalog.enums';
import type { TierEntity } from '../../catalog/tier.entity';
import { monthsStarted } from './plan-calendar';

/** A plan's price at the provider: what a subscription charges each period. */
export interface PlanPrice {
  amountCents: number;
  currency: string;
  interval: 'MONTHLY' | 'ANNUAL';
  /** What the customer sees, e.g. "Pro plan". */
  name: string;
}

type PricedTier = Pick<TierEntity, 'name' | 'monthlyPriceCents' | 'annualPriceCents' | 'currency'>;

export const priceOf = (t: PricedTier, i: BillingInterval): number => (i === BillingInterval.ANNUAL ? t.annualPriceCents : t.monthlyPriceCents);

export const planPrice = (t: PricedTier, i: BillingInterval): PlanPrice => ({ amountCents: priceOf(t, i), currency: t.currency.trim(), interval: i, name: `${t.name} plan` });

/** Share of the span from `start` to `end` still ahead at `now` (0 to 1). */
export function shareLeft(start: Date, end: Date, now: Date): number {
  const span = end.getTime() - start.getTime();
  return span > 0 ? Math.min(1, Math.max(0, end.getTime() - now.getTime()) / span) : 0;
}

/** A price change within a billing period: the difference × the share of the period left, rounded up to the cent (never negative). */
export function prorationCents(fromCents: number, toCents: number, periodStart: Date, periodEnd: Date, now: Date): number {
  return Math.max(0, Math.ceil((toCents - fromCents) * shareLeft(periodStart, periodEnd, now)));
}

/** An upgrade's charge: the proration of the two prices for the interval. */
export function upgradeChargeCents(current: PricedTier, target: PricedTier, interval: BillingInterval, periodStart: Date, periodEnd: Date, now: Date): number {
  return prorationCents(priceOf(current, interval), priceOf(target, interval), periodStart, periodEnd, now);
}

/** An upgrade's credits: the difference of the monthly allowances × the share of the allowance month left, rounded down. */
export function upgradeCredits(current: Pick<TierEntity, 'monthlyCredits'>, target: Pick<TierEntity, 'monthlyCredits'>, monthStart: Date, monthEnd: Date, now: Date): number {
  return Math.max(0, Math.floor((target.monthlyCredits - current.monthlyCredits) * shareLeft(monthStart, monthEnd, now)));
}

/**
 * An annual plan's partial refund: the price paid less every month started at the tier's monthly
 * price (so it never undercuts paying monthly), never below 0.
 */
export function annualRefund(paidCents: number, monthlyPriceCents: number, periodStart: Date, periodEnd: Date, now: Date): { cents: number; started: number; total: number } {
  const { started, total } = monthsStarted(periodStart, periodEnd, now);
  return { cents: Math.max(0, paidCents - started * monthlyPriceCents), started, total };
}
