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

/** The end of the first allowance month of a period (never past the period end). */
export function firstMonthEnd(start: Date, end: Date): Date {
  const m = addMonths(start, 1);
  return m < end ? m : end;
}

/**
 * The allowance month after the one ending at `currentEnd`, inside a billing period: months are
 * counted from the period start (Jan 31, Feb 28, Mar 31, …), so a year has exactly twelve.
 */
export function nextAllowanceMonth(periodStart: Date, end: Date, currentEnd: Date): { start: Date; end: Date } {
  let k = 1;
  while (addMonths(periodStart, k) < currentEnd && k < 1200) k++;
  const next = addMonths(periodStart, k + 1);
  return { start: currentEnd, end: next < end ? next : end };
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
