/**
 * Balance.runway (issue 14, part 6): standard images at today's price book, the average daily
 * spend of the last 30 UTC days net of refunds, and the days that leaves — read from the daily
 * spend the ledger keeps (account_daily_spend), not from a scan of the ledger.
 */
import { AdvanceTestClockDocument, CancelGenerationDocument, StartGenerationDocument } from './graphql/generated';
import { ADMIN, openAccount } from './helpers/accounts';
import { useTestApp } from './helpers/test-app';

const t = useTestApp({ TEST_CLOCK: '1', JOB_SWEEP_INTERVAL_MS: '3600000' });

type Runway = { standardImages: number; dailySpend: number; daysLeft: number | null };
async function runway(sub: string): Promise<{ available: number; runway: Runway }> {
  const r = await t.app.raw<{ me: { balance: { available: number; runway: Runway } } }>('{ me { balance { available runway { standardImages dailySpend daysLeft } } } }', undefined, { sub });
  expect(r.errors).toBeUndefined();
  return r.data!.me.balance;
}
const start = (sub: string, imageQuality: 'STANDARD' | 'HIGH') =>
  t.app.gql(StartGenerationDocument, { input: { settings: { type: 'IMAGE', imageQuality }, prompt: 'p' } }, { sub });

describe('runway', () => {
  it('is the images the balance pays for, and no days left when nothing was spent', async () => {
    await openAccount(t.app, 'idle', { balance: 40 });
    expect(await runway('idle')).toEqual({ available: 40, runway: { standardImages: 40, dailySpend: 0, daysLeft: null } });
  });

  it('averages the last 30 days of spend net of refunds, and forgets what is older', async () => {
    await openAccount(t.app, 'spender', { balance: 100 });
    for (const q of ['STANDARD', 'STANDARD', 'HIGH', 'HIGH'] as const) expect((await start('spender', q)).data!.startGeneration.userErrors).toEqual([]);
    const job = (await start('spender', 'HIGH')).data!.startGeneration.job!;
    await t.app.gql(CancelGenerationDocument, { jobId: job.id }, { sub: 'spender' });
    // Spent 1 + 1 + 3 + 3 (+ 3 refunded) = 8 credits over 30 days.
    expect(await runway('spender')).toEqual({ available: 92, runway: { standardImages: 92, dailySpend: 8 / 30, daysLeft: 92 / (8 / 30) } });
    expect(await t.app.rows('SELECT spent, refunded FROM account_daily_spend WHERE account_id = $1', ['spender'])).toEqual([{ spent: 11, refunded: 3 }]);
    expect((await t.app.gql(AdvanceTestClockDocument, { hours: 24 * 20 }, ADMIN)).errors).toBeUndefined();
    await start('spender', 'STANDARD');
    expect((await runway('spender')).runway).toEqual({ standardImages: 91, dailySpend: 9 / 30, daysLeft: 91 / (9 / 30) });
    expect((await t.app.gql(AdvanceTestClockDocument, { hours: 24 * 11 }, ADMIN)).errors).toBeUndefined();
    // The first day is 31 days old now: only the later image counts.
    expect((await runway('spender')).runway).toEqual({ standardImages: 91, dailySpend: 1 / 30, daysLeft: 91 * 30 });
  });
});
