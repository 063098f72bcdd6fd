/**
 * Rollover and receipts (issue 14, parts 2 and 5): an allowance lot expires its tier's
 * `rolloverMonths` after its month, on the plan's anchor day; older credits are spent first; a
 * plan that ends keeps what it granted until then. A job's `charges` are its lot movements.
 * The clock starts at 2025-01-31T18:00Z: plans started then are anchored on the 31st
 * (Feb 28, Mar 31, Apr 30, May 31 …).
 */
import { addMonths } from '../src/modules/billing/plans/plan-calendar';
import { CancelPlanDocument, StartGenerationDocument } from './graphql/generated';
import { adjustCredits, advanceDays, changePlan, openAccount, signupCredits } from './helpers/accounts';
import { useTestApp } from './helpers/test-app';

const t = useTestApp({ TEST_CLOCK: '1', JOB_SWEEP_INTERVAL_MS: '3600000', IDEMPOTENCY_RETENTION_HOURS: String(200 * 24) });
let signup: number;

beforeAll(async () => {
  signup = await signupCredits(t.app);
});

type Lot = { source: string; granted: number; remaining: number; expiresAt: string | null };
async function lotsOf(sub: string): Promise<Lot[]> {
  const r = await t.app.raw<{ me: { balance: { lots: Lot[] } } }>('{ me { balance { lots { source granted remaining expiresAt } } } }', undefined, { sub });
  return r.data!.me.balance.lots;
}
const expiries = (sub: string) => t.app.rows<{ amount: number }>(`SELECT amount FROM ledger_entries WHERE account_id = $1 AND kind = 'EXPIRY' ORDER BY id`, [sub]);

describe('rollover', () => {
  it('gives each tier its rollover months in the catalog: FREE 0, CREATOR 0, PRO 1, MAX 2', async () => {
    const r = await t.app.raw<{ tiers: { code: string; rolloverMonths: number }[] }>('{ tiers { code rolloverMonths } }');
    expect(r.data!.tiers).toEqual([
      { code: 'FREE', rolloverMonths: 0 },
      { code: 'CREATOR', rolloverMonths: 0 },
      { code: 'PRO', rolloverMonths: 1 },
      { code: 'MAX', rolloverMonths: 2 },
    ]);
  });

  // The clock moves for the whole file: this test runs first and owns its dates.
  it('keeps a PRO month one month more over three renewals, spends the older month first, and expires exactly what is left of each', async () => {
    const out = (await changePlan(t.app, 'roller', 'PRO')).data!.changePlan;
    expect(out.userErrors).toEqual([]);
    const anchor = new Date(out.plan!.currentPeriodStart!);
    const end = (k: number) => addMonths(anchor, k).toISOString();
    // Month 1 (to Feb 28) expires a month after it: Mar 31.
    expect(await lotsOf('roller')).toEqual([
      { source: 'MONTHLY_ALLOWANCE', granted: 1000, remaining: 1000, expiresAt: end(2) },
      { source: 'SIGNUP_BONUS', granted: signup, remaining: signup, expiresAt: null },
    ]);
    expect((await adjustCredits(t.app, 'roller', -300)).data!.adjustCredits.userErrors).toEqual([]);
    await advanceDays(t.app, 29); // past Feb 28: the first renewal
    expect(await lotsOf('roller')).toEqual([
      { source: 'MONTHLY_ALLOWANCE', granted: 1000, remaining: 700, expiresAt: end(2) },
      { source: 'MONTHLY_ALLOWANCE', granted: 1000, remaining: 1000, expiresAt: end(3) },
      { source: 'SIGNUP_BONUS', granted: signup, remaining: signup, expiresAt: null },
    ]);
    // Spent from the month that expires first.
    await adjustCredits(t.app, 'roller', -500);
    await advanceDays(t.app, 31); // past Mar 31: the second renewal, and month 1 expires with 200 left
    expect(await expiries('roller')).toEqual([{ amount: -200 }]);
    expect(await lotsOf('roller')).toEqual([
      { source: 'MONTHLY_ALLOWANCE', granted: 1000, remaining: 1000, expiresAt: end(3) },
      { source: 'MONTHLY_ALLOWANCE', granted: 1000, remaining: 1000, expiresAt: end(4) },
      { source: 'SIGNUP_BONUS', granted: signup, remaining: signup, expiresAt: null },
    ]);
    await advanceDays(t.app, 30); // past Apr 30: the third renewal; month 2 expires untouched
    expect(await expiries('roller')).toEqual([{ amount: -200 }, { amount: -1000 }]);
    expect(await lotsOf('roller')).toEqual([
      { source: 'MONTHLY_ALLOWANCE', granted: 1000, remaining: 1000, expiresAt: end(4) },
      { source: 'MONTHLY_ALLOWANCE', granted: 1000, remaining: 1000, expiresAt: end(5) },
      { source: 'SIGNUP_BONUS', granted: signup, remaining: signup, expiresAt: null },
    ]);
    const available = (await t.app.one<{ available: number }>('SELECT available FROM accounts WHERE id = $1', ['roller'])).available;
    expect(available).toBe(signup + 4 * 1000 - 300 - 500 - 200 - 1000);
  });

  it('keeps the credits a cancelled MAX plan granted until their own expiry, two months after their month', async () => {
    const out = (await changePlan(t.app, 'leaver', 'MAX')).data!.changePlan;
    const start = new Date(out.plan!.currentPeriodStart!);
    const lots = await lotsOf('leaver');
    expect(lots[0]).toEqual({ source: 'MONTHLY_ALLOWANCE', granted: 3000, remaining: 3000, expiresAt: addMonths(start, 3).toISOString() });
    expect((await t.app.gql(CancelPlanDocument, {}, { sub: 'leaver' })).data!.cancelPlan.userErrors).toEqual([]);
    await advanceDays(t.app, 32); // the plan ended at its period end
    const me = await t.app.raw<{ me: { plan: { tier: { code: string } } } }>('{ me { plan { tier { code } } } }', undefined, { sub: 'leaver' });
    expect(me.data!.me.plan.tier.code).toBe('FREE');
    expect((await lotsOf('leaver'))[0]).toEqual(lots[0]);
    expect(await expiries('leaver')).toEqual([]);
  });
});

describe('receipts', () => {
  it("names the lots that paid for a job and what came back to each when it was cancelled", async () => {
    await openAccount(t.app, 'receipt', { tier: 'PRO' });
    // Leave 1 credit in the allowance lot (spent first): a 3-credit job takes 1 from it and 2 from the sign-up lot.
    await adjustCredits(t.app, 'receipt', -999);
    const s = await t.app.gql(StartGenerationDocument, { input: { settings: { type: 'IMAGE', imageQuality: 'HIGH' }, prompt: 'p' } }, { sub: 'receipt' });
    const job = s.data!.startGeneration.job!;
    expect(job.credits).toBe(3);
    const receipt = () =>
      t.app.raw<{ job: { charges: { lotId: string; source: string; credits: number; refunded: number }[] } }>(
        `query($id: ID!) { job(id: $id) { charges { lotId source credits refunded } } }`,
        { id: job.id },
        { sub: 'receipt' },
      );
    const lots = await t.app.rows<{ id: string; source: string }>(`SELECT id, source FROM credit_lots WHERE account_id = $1 ORDER BY expires_at NULLS LAST`, ['receipt']);
    expect((await receipt()).data!.job.charges).toEqual([
      { lotId: lots[0].id, source: 'MONTHLY_ALLOWANCE', credits: 1, refunded: 0 },
      { lotId: lots[1].id, source: 'SIGNUP_BONUS', credits: 2, refunded: 0 },
    ]);
    await t.app.raw(`mutation($id: ID!) { cancelGeneration(jobId: $id) { userErrors { code } } }`, { id: job.id }, { sub: 'receipt' });
    expect((await receipt()).data!.job.charges).toEqual([
      { lotId: lots[0].id, source: 'MONTHLY_ALLOWANCE', credits: 1, refunded: 1 },
      { lotId: lots[1].id, source: 'SIGNUP_BONUS', credits: 2, refunded: 2 },
    ]);
    // Another account's job: no receipt leaks (the job itself is null to them).
    const other = await t.app.raw<{ job: unknown }>(`query($id: ID!) { job(id: $id) { charges { credits } } }`, { id: job.id }, { sub: 'stranger' });
    expect(other.data).toEqual({ job: null });
  });
});
