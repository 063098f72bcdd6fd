/**
 * The plan calendar (UTC), one place for plans and refunds: billing periods of one or twelve
 * calendar months, and allowance months counted from the period start (Jan 31, Feb 28, Mar 31 …).
 */
import { BillingInterval } from '../../catalog/catalog.enums';

/** `d` plus `n` calendar months (UTC), clamped to the month's last day. */
export function addMonths(d: Date, n: number): Date {
  const r = new Date(d.getTime());
  const day = r.getUTCDate();
  r.setUTCDate(1);
  r.setUTCMonth(r.getUTCMonth() + n);
  const last = new Date(Date.UTC(r.getUTCFullYear(), r.getUTCMonth() + 1, 0)).getUTCDate();
  r.setUTCDate(Math.min(day, last));
  return r;
}

/** Calendar months in one billing period of the interval. */
export const monthsOf = (i: BillingInterval): number => (i === BillingInterval.ANNUAL ? 12 : 1);

/** The end of a billing period of `interval` starting at `start`. */
export const periodEnd = (start: Date, interval: BillingInterval): Date => addMonths(start, monthsOf(interval));

/**
 * The first date after `after` that is the anchor plus a whole number of steps of `months`
 * (each clamped to its month's last day): a plan that started on Jan 31 renews on Feb 28,
 * Mar 31, Apr 30 … — on its day, as Stripe bills it, never drifting to the 28th.
 */
export function nextAnchored(anchor: Date, after: Date, months: number): Date {
  let k = months;
  while (addMonths(anchor, k) <= after && k < 12000) k += months;
  return addMonths(anchor, k);
}

/** The end of a billing period of `interval` starting at `start`, on the plan's anchor day. */
export const anchoredPeriodEnd = (anchor: Date, start: Date, interval: BillingInterval): Date => nextAnchored(anchor, start, monthsOf(interval));

/** The end of the allowance month starting at `start` (never past the period end), on the anchor day. */
export function firstMonthEnd(start: Date, end: Date, anchor: Date = start): Date {
  const m = nextAnchored(anchor, start, 1);
  return m < end ? m : end;
}

/**
 * The allowance month after the one ending at `currentEnd`, inside a billing period: months are
 * counted from the plan's anchor (Jan 31, Feb 28, Mar 31, …), so a year has exactly twelve.
 */
export function nextAllowanceMonth(anchor: Date, end: Date, currentEnd: Date): { start: Date; end: Date } {
  return { start: currentEnd, end: firstMonthEnd(currentEnd, end, anchor) };
}

/**
 * When the credits of the allowance month ending at `monthEnd` expire: `rollover` allowance
 * months later, on the plan's anchor day (0: with their month). A plan that ends keeps them to
 * this date all the same.
 */
export function allowanceExpiry(anchor: Date, monthEnd: Date, rollover: number): Date {
  let d = monthEnd;
  for (let i = 0; i < rollover; i++) d = nextAnchored(anchor, d, 1);
  return d;
}

/** Allowance months of the period from `start` to `end` that have started by `now` (0 to their number). */
export function monthsStarted(start: Date, end: Date, now: Date): { started: number; total: number } {
  let started = 0;
  let total = 0;
  for (let k = 0; k < 1200 && addMonths(start, k) < end; k++) {
    total++;
    if (addMonths(start, k) <= now) started++;
  }
  return { started, total };
}
