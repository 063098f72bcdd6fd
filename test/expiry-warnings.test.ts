/**
 * Expiry warnings and Balance.nextExpiry (issue 14, part 3): CREDITS_EXPIRING 7 days and 1 day
 * before a lot with credits left expires, once per lot and lead time, from the sweep of any
 * number of instances. A CREATOR plan's month (300 credits, no rollover) is the lot; the clock
 * moves in whole hours from wherever TEST_CLOCK_START put it.
 */
import { AdvanceTestClockDocument, CancelPlanDocument } from './graphql/generated';
import { ADMIN, adjustCredits, changePlan } from './helpers/accounts';
import { startTestApp, useTestApp } from './helpers/test-app';

const t = useTestApp({ TEST_CLOCK: '1', JOB_SWEEP_INTERVAL_MS: '3600000' });
const HOUR = 3600_000;

const warnings = (sub: string) =>
  t.app.rows<{ kind: string; message: string }>(`SELECT kind, params::text AS message FROM notifications WHERE account_id = $1 AND kind = 'CREDITS_EXPIRING' ORDER BY id`, [sub]);
async function messages(sub: string): Promise<string[]> {
  const r = await t.app.raw<{ me: { notifications: { edges: { node: { kind: string; message: string } }[] } } }>(
    '{ me { notifications(first: 50) { edges { node { kind message } } } } }',
    undefined,
    { sub },
  );
  return r.data!.me.notifications.edges.map((e) => e.node).filter((n) => n.kind === 'CREDITS_EXPIRING').map((n) => n.message).reverse();
}
async function nextExpiry(sub: string) {
  const r = await t.app.raw<{ me: { balance: { nextExpiry: { credits: number; expiresAt: string } | null } } }>('{ me { balance { nextExpiry { credits expiresAt } } } }', undefined, { sub });
  return r.data!.me.balance.nextExpiry;
}
async function move(hours: number): Promise<void> {
  expect(Number.isInteger(hours) && hours > 0).toBe(true);
  expect((await t.app.gql(AdvanceTestClockDocument, { hours }, ADMIN)).errors).toBeUndefined();
}
/** Whole hours from now until `at` (the clock runs on in real time between moves, by far less than an hour). */
const hoursUntil = (at: Date) => Math.round((at.getTime() - t.app.server.services.clock.now().getTime()) / HOUR);
const said = (credits: number, when: string, at: Date) => `${credits} credits expire ${when}, on ${at.toISOString().slice(0, 10)} at ${at.toISOString().slice(11, 16)} UTC: use them before then.`;

describe('expiry warnings', () => {
  it('warns 7 days and 1 day before a lot with credits left expires, once each, with the amount and the date', async () => {
    const out = (await changePlan(t.app, 'warned', 'CREATOR')).data!.changePlan;
    const end = new Date(out.plan!.currentPeriodEnd!);
    // Leave it on FREE at the period end, so no renewal brings a new month into the picture.
    expect((await t.app.gql(CancelPlanDocument, {}, { sub: 'warned' })).data!.cancelPlan.userErrors).toEqual([]);
    await adjustCredits(t.app, 'warned', -50);
    expect(await nextExpiry('warned')).toEqual({ credits: 250, expiresAt: end.toISOString() });
    await move(hoursUntil(end) - 7 * 24 - 1); // 7 days and 1 hour before
    expect(await warnings('warned')).toEqual([]);
    await move(1); // 7 days before
    expect(await messages('warned')).toEqual([said(250, 'in 7 days', end)]);
    await move(24); // a day later, and again: nothing new
    await t.app.server.services.expiries.warnDue();
    expect((await warnings('warned')).length).toBe(1);
    await move(5 * 24 - 1); // 1 day and 1 hour before
    expect((await warnings('warned')).length).toBe(1);
    await move(1); // 1 day before
    expect(await messages('warned')).toEqual([said(250, 'in 7 days', end), said(250, 'tomorrow', end)]);
    await move(25); // expired: the 250 credits go, no more warnings
    expect((await warnings('warned')).length).toBe(2);
    expect(await t.app.rows(`SELECT amount FROM ledger_entries WHERE account_id = $1 AND kind = 'EXPIRY'`, ['warned'])).toEqual([{ amount: -250 }]);
    expect(await nextExpiry('warned')).toBeNull();
  });

  it('warns once per lot and lead time when two instances sweep at once', async () => {
    await changePlan(t.app, 'raced', 'CREATOR');
    await t.app.gql(CancelPlanDocument, {}, { sub: 'raced' });
    const other = await startTestApp({ TEST_CLOCK: '1', JOB_SWEEP_INTERVAL_MS: '3600000' }, t.app.databaseUrl);
    try {
      // Move the shared clock to 7 days before the month's end without running the due work, then sweep on both at once.
      const end = (await t.app.one<{ e: Date }>('SELECT current_period_end AS e FROM accounts WHERE id = $1', ['raced'])).e;
      await t.app.server.services.testClock.advance(end.getTime() - 7 * 24 * HOUR - t.app.server.services.clock.now().getTime(), async () => undefined);
      other.server.services.clock.setOffset(t.app.server.services.clock.offset);
      const made = await Promise.all([t.app.server.services.expiries.warnDue(), other.server.services.expiries.warnDue(), t.app.server.services.expiries.warnDue()]);
      expect(made.reduce((a, b) => a + b, 0)).toBe(1);
      expect(await messages('raced')).toEqual([said(300, 'in 7 days', end)]);
    } finally {
      await other.stop();
    }
  });

  it('does not warn of a lot spent to nothing', async () => {
    await changePlan(t.app, 'spent', 'CREATOR');
    await t.app.gql(CancelPlanDocument, {}, { sub: 'spent' });
    await adjustCredits(t.app, 'spent', -300); // the month's lot first (it expires; sign-up credits never do)
    const end = (await t.app.one<{ e: Date }>('SELECT current_period_end AS e FROM accounts WHERE id = $1', ['spent'])).e;
    await move(hoursUntil(end) - 12);
    expect(await warnings('spent')).toEqual([]);
    expect(await nextExpiry('spent')).toBeNull();
  });
});
