/**
 * How far a balance goes (Balance.runway): standard images at today's price book, the average
 * daily spend of the last 30 UTC days (today included) net of refunds, and the days that leaves.
 * The spend is read from account_daily_spend (at most 30 rows), kept by a ledger trigger.
 */
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import { GenerationType } from '../catalog/catalog.enums';
import { ImageQuality } from '../quotes/cost-class.enum';
import type { QuoteService } from '../quotes/quote.service';
import type { Runway } from './runway.type';

export const RUNWAY_DAYS = 30;

export async function runwayOf(db: DataSource, clock: Clock, quotes: QuoteService, accountId: string, available: number): Promise<Runway> {
  const [priced, [row]] = await Promise.all([
    quotes.price({ type: GenerationType.IMAGE, imageQuality: ImageQuality.STANDARD }),
    db.query(
      `SELECT coalesce(sum(spent - refunded), 0)::int AS net FROM account_daily_spend
        WHERE account_id = $1 AND day > ($2::timestamptz AT TIME ZONE 'UTC')::date - $3::int AND day <= ($2::timestamptz AT TIME ZONE 'UTC')::date`,
      [accountId, clock.now(), RUNWAY_DAYS],
    ) as Promise<{ net: number }[]>,
  ]);
  const price = priced.price.credits;
  const dailySpend = Math.max(0, row.net) / RUNWAY_DAYS;
  return {
    standardImages: price > 0 ? Math.floor(available / price) : 0,
    dailySpend,
    daysLeft: dailySpend > 0 ? available / dailySpend : null,
  };
}
