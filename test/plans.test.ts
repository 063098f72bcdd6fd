import type { SandboxProvider } from '../src/modules/billing/sandbox-provider';
import { addMonths } from '../src/modules/billing/plans/plan-calendar';
import { StartGenerationDocument, CancelPlanDocument, MyNotificationsDocument, MyPlanDocument } from './graphql/generated';
import { adjustCredits, advanceDays, changePlan, openAccount, signupCredits } from './helpers/accounts';
import { startTestApp, useTestApp } from './helpers/test-app';
import { notesOf } from './helpers/notices';

// A replay window of 40 days: retries here come up to 32 days after the first request.
const t = useTestApp({ TEST_CLOCK: '1', JOB_SWEEP_INTERVAL_MS: '3600000', IDEMPOTENCY_RETENTION_HOURS: String(40 * 24) });
const DAY = 24 * 3600 * 1000;
let signup: number; // the catalog's sign-up credits: every account starts with them

beforeAll(async () => {
  signup = await signupCredits(t.app);
});

async function plan(sub: string) {
  return (await t.app.gql(MyPlanDocument, {}, { sub })).data!.me;
}

describe('plans', () => {
  it('starts a paid plan from FREE at once: full price, the month’s allowance expiring a month after the month end (PRO’s rollover), its queue', async () => {
    const res = await changePlan(t.app, 'starter', 'PRO');
    const out = res.data!.changePlan;
    expect(out.userErrors).toEqual([]);
    expect(out.purchase).toMatchObject({ kind: 'PLAN', status: 'COMPLETED', tier: 'PRO', interval: 'MONTHLY', credits: 1000, amountCents: 2900 });
    expect(out.plan).toMatchObject({ tier: { code: 'PRO' }, interval: 'MONTHLY', status: 'ACTIVE', cancelAtPeriodEnd: false, scheduledTier: null });
    const start = new Date(out.plan!.currentPeriodStart!);
    expect(new Date(out.plan!.currentPeriodEnd!).getTime()).toBe(addMonths(start, 1).getTime());
    expect(out.balance).toEqual({ available: signup + 1000 });
    const me = await plan('starter');
    expect(me.balance.lots.map((l) => [l.source, l.granted, l.expiresAt])).toEqual([
      ['MONTHLY_ALLOWANCE', 1000, addMonths(start, 2).toISOString()],
      ['SIGNUP_BONUS', signup, null],
    ]);
  });

  it('upgrades at once with the charge and the credits prorated to what is left of the period', async () => {
    await changePlan(t.app, 'upgrader', 'PRO');
    await advanceDays(t.app, 10);
    const [a] = await t.app.rows<Record<string, Date>>('SELECT current_period_start, current_period_end, allowance_period_start, allowance_period_end FROM accounts WHERE id = $1', ['upgrader']);
    const now = t.app.server.services.clock.now().getTime();
    const res = await changePlan(t.app, 'upgrader', 'MAX');
    const out = res.data!.changePlan;
    const periodLeft = (a.current_period_end.getTime() - now) / (a.current_period_end.getTime() - a.current_period_start.getTime());
    const monthLeft = (a.allowance_period_end.getTime() - now) / (a.allowance_period_end.getTime() - a.allowance_period_start.getTime());
    // The clock moved a little between reading and changing: allow the last cent and credit.
    expect(Math.abs(out.purchase!.amountCents - Math.ceil(5000 * periodLeft))).toBeLessThanOrEqual(1);
    expect(Math.abs(out.purchase!.credits - Math.floor(2000 * monthLeft))).toBeLessThanOrEqual(1);
    expect(out.purchase!.amountCents).toBeGreaterThan(3000);
    expect(out.purchase!.amountCents).toBeLessThan(4000);
    expect(out.plan!.tier.code).toBe('MAX');
    expect(out.plan!.currentPeriodEnd).toEqual(a.current_period_end.toISOString());
    expect(out.balance!.available).toBe(signup + 1000 + out.purchase!.credits);
  });

  it('moves to a lower tier at the period end: the new allowance comes, once, and the unused MAX month stays for its two months of rollover', async () => {
    await changePlan(t.app, 'downer', 'MAX');
    const res = await changePlan(t.app, 'downer', 'CREATOR');
    expect(res.data!.changePlan.plan).toMatchObject({ tier: { code: 'MAX' }, scheduledTier: { code: 'CREATOR' }, scheduledInterval: 'MONTHLY' });
    expect(res.data!.changePlan.purchase).toBeNull();
    await advanceDays(t.app, 32);
    const me = await plan('downer');
    expect(me.plan).toMatchObject({ tier: { code: 'CREATOR' }, status: 'ACTIVE', scheduledTier: null });
    expect(me.balance.available).toBe(signup + 3000 + 300);
    const expired = await t.app.rows(`SELECT amount FROM ledger_entries WHERE account_id = $1 AND kind = 'EXPIRY'`, ['downer']);
    expect(expired).toEqual([]);
    const charges = await t.app.rows(`SELECT tier, amount_cents FROM purchases WHERE account_id = $1 ORDER BY created_at`, ['downer']);
    expect(charges).toEqual([{ tier: 'MAX', amount_cents: 7900 }, { tier: 'CREATOR', amount_cents: 1200 }]);
    const notes = await t.app.gql(MyNotificationsDocument, {}, { sub: 'downer' });
    expect(notes.data!.me.notifications.edges[0].node.kind).toBe('PLAN_RENEWED');
  });

  it('cancels at the period end and falls back to FREE', async () => {
    await changePlan(t.app, 'leaver', 'CREATOR');
    const c = await t.app.gql(CancelPlanDocument, {}, { sub: 'leaver' });
    expect(c.data!.cancelPlan.plan).toMatchObject({ tier: { code: 'CREATOR' }, status: 'ACTIVE', cancelAtPeriodEnd: true });
    await advanceDays(t.app, 32);
    const me = await plan('leaver');
    expect(me.plan).toMatchObject({ tier: { code: 'FREE' }, status: 'CANCELED', interval: null, cancelAtPeriodEnd: false });
    expect(me.balance.available).toBe(signup);
    // The plan ended: PLAN_ENDED, never PLAN_RENEWED (no new period started).
    const notes = await notesOf(t.app, 'leaver', ['PLAN_RENEWED', 'PLAN_ENDED']);
    expect(notes).toEqual([{ kind: 'PLAN_ENDED', message: 'Your Creator plan ended as you asked; you are on the Free plan now.' }]);
    const again = await t.app.gql(CancelPlanDocument, {}, { sub: 'leaver' });
    expect(again.data!.cancelPlan.userErrors.map((e) => e.code)).toEqual(['INVALID_STATE']);
  });

  it('charges an annual plan once a year and grants its allowance every month', async () => {
    await changePlan(t.app, 'yearly', 'CREATOR', 'ANNUAL');
    for (let m = 0; m < 3; m++) await advanceDays(t.app, 31);
    const grants = await t.app.rows('SELECT credits FROM allowance_grants WHERE account_id = $1 ORDER BY period_start', ['yearly']);
    expect(grants).toHaveLength(4);
    const charges = await t.app.rows(`SELECT amount_cents FROM purchases WHERE account_id = $1`, ['yearly']);
    expect(charges).toEqual([{ amount_cents: 11520 }]);
    const me = await plan('yearly');
    expect(me.balance.available).toBe(signup + 300); // earlier months expired
  });

  it('leaves a plan PAST_DUE with no new allowance when the renewal payment fails', async () => {
    await changePlan(t.app, 'declined', 'PRO');
    (t.app.server.services.payments as SandboxProvider).failNext(1, 'card declined', 'declined');
    await advanceDays(t.app, 32);
    const me = await plan('declined');
    expect(me.plan.status).toBe('PAST_DUE');
    expect(me.balance.available).toBe(signup + 1000); // no new month; the first is kept by PRO's rollover
    const grants = await t.app.rows('SELECT count(*)::int AS n FROM allowance_grants WHERE account_id = $1', ['declined']);
    expect(grants[0].n).toBe(1);
    // Unpaid: FREE features and the standard queue until paid; it can be cancelled at once.
    const ultra = await t.app.gql(StartGenerationDocument, { input: { settings: { type: 'IMAGE', imageQuality: 'ULTRA' }, prompt: 'p' } }, { sub: 'declined' });
    expect(ultra.data!.startGeneration.userErrors.map((e) => e.code)).toEqual(['FEATURE_NOT_IN_TIER']);
    const high = await t.app.gql(StartGenerationDocument, { input: { settings: { type: 'IMAGE', imageQuality: 'HIGH' }, prompt: 'p' } }, { sub: 'declined' });
    expect(high.data!.startGeneration.job!.queueClass).toBe('STANDARD');
    const cancelled = await t.app.gql(CancelPlanDocument, {}, { sub: 'declined' });
    expect(cancelled.data!.cancelPlan).toMatchObject({ plan: { tier: { code: 'FREE' }, status: 'CANCELED' }, userErrors: [] });
  });

  it('a new plan asked for over an unpaid (PAST_DUE) one replaces it at the ask: when its first payment is declined too, the account is left on FREE', async () => {
    await changePlan(t.app, 'replaced', 'CREATOR');
    const provider = t.app.server.services.payments as SandboxProvider;
    provider.failNext(2, 'card declined', 'replaced'); // the renewal, then the new plan's first payment
    await advanceDays(t.app, 32);
    expect((await plan('replaced')).plan).toMatchObject({ tier: { code: 'CREATOR' }, status: 'PAST_DUE' });
    const out = (await changePlan(t.app, 'replaced', 'CREATOR')).data!.changePlan;
    expect(out.userErrors.map((e) => e.code)).toEqual(['PAYMENT_FAILED']);
    expect(out.purchase).toMatchObject({ kind: 'PLAN', status: 'FAILED', tier: 'CREATOR', amountCents: 1200 });
    expect((await plan('replaced')).plan).toMatchObject({ tier: { code: 'FREE' }, status: 'CANCELED', currentPeriodStart: null, currentPeriodEnd: null });
    const subs = await t.app.rows<{ status: string }>('SELECT status FROM sandbox_subscriptions WHERE account_id = $1', ['replaced']);
    expect(subs.map((r) => r.status)).toEqual(['CANCELED']); // the unpaid one stopped collecting; the declined one never started
  });

  it('renews once per account and period even when two instances run the renewals at once', async () => {
    await changePlan(t.app, 'twice', 'PRO');
    const other = await startTestApp({ TEST_CLOCK: '1', JOB_SWEEP_INTERVAL_MS: '3600000' }, t.app.databaseUrl);
    try {
      // Move the shared clock without running the due work, then run it on both instances at once.
      await t.app.server.services.testClock.advance(32 * DAY, async () => undefined);
      other.server.services.clock.setOffset(t.app.server.services.clock.offset);
      await Promise.all([t.app.server.services.planSweep.renewDue(), other.server.services.planSweep.renewDue(), t.app.server.services.planSweep.renewDue()]);
      const grants = await t.app.rows('SELECT count(*)::int AS n FROM allowance_grants WHERE account_id = $1', ['twice']);
      expect(grants[0].n).toBe(2);
      const charges = await t.app.rows(`SELECT count(*)::int AS n FROM purchases WHERE account_id = $1`, ['twice']);
      expect(charges[0].n).toBe(2);
      await t.app.server.services.expiries.expireDue();
      expect((await plan('twice')).balance.available).toBe(signup + 2000); // the first month is kept one month more (rollover)
    } finally {
      await other.server.stop();
      await other.audit.end();
    }
  });

  it('never charges for an upgrade it does not apply when plan changes race: each payment is answered before the next change is decided', async () => {
    for (let r = 0; r < 6; r++) {
      const sub = `racing-upgrades-${r}`;
      await changePlan(t.app, sub, 'CREATOR');
      const outs = await Promise.all([changePlan(t.app, sub, 'PRO', 'MONTHLY', `a-${r}`), changePlan(t.app, sub, 'MAX', 'MONTHLY', `b-${r}`), t.app.gql(CancelPlanDocument, {}, { sub })]);
      for (const o of outs) {
        const errors = 'changePlan' in o.data! ? o.data!.changePlan.userErrors : o.data!.cancelPlan.userErrors;
        expect(errors.every((e) => e.code === 'INVALID_STATE')).toBe(true);
      }
      const purchases = await t.app.rows(`SELECT id, status, tier FROM purchases WHERE account_id = $1 ORDER BY created_at`, [sub]);
      expect(purchases.filter((p) => p.status === 'PENDING')).toEqual([]);
      const completed = purchases.filter((p) => p.status === 'COMPLETED');
      // One payment at the provider per completed purchase, and the plan is the last tier paid for.
      const paid = await t.app.rows(`SELECT count(*)::int AS n FROM sandbox_payments WHERE account_id = $1`, [sub]);
      expect(paid[0].n).toBe(completed.length);
      expect((await plan(sub)).plan.tier.code).toBe(completed[completed.length - 1].tier);
    }
  });

  it('charges once for twenty concurrent plan changes with one key, and refuses the plan you already have', async () => {
    await openAccount(t.app, 'eager');
    const results = await Promise.all(Array.from({ length: 20 }, () => changePlan(t.app, 'eager', 'CREATOR', 'MONTHLY', 'go-creator')));
    expect(new Set(results.map((r) => r.data!.changePlan.purchase?.id)).size).toBe(1);
    const charges = await t.app.rows(`SELECT count(*)::int AS n FROM purchases WHERE account_id = $1`, ['eager']);
    expect(charges[0].n).toBe(1);
    const same = await changePlan(t.app, 'eager', 'CREATOR');
    expect(same.data!.changePlan.userErrors.map((e) => e.code)).toEqual(['INVALID_STATE']);
  });

  it('renews the FREE tier’s monthly credits the same way when the catalog gives any', async () => {
    await t.app.audit.query(`UPDATE tiers SET monthly_credits = 10 WHERE code = 'FREE'`);
    t.app.server.services.catalog.invalidate();
    try {
      await openAccount(t.app, 'free-monthly');
      let me = await plan('free-monthly');
      expect(me.balance.available).toBe(signup + 10);
      expect(me.balance.lots.map((l) => [l.source, l.granted])).toEqual([['MONTHLY_ALLOWANCE', 10], ['SIGNUP_BONUS', signup]]);
      await advanceDays(t.app, 32);
      me = await plan('free-monthly');
      expect(me.balance.available).toBe(signup + 10);
      const grants = await t.app.rows('SELECT credits FROM allowance_grants WHERE account_id = $1', ['free-monthly']);
      expect(grants).toEqual([{ credits: 10 }, { credits: 10 }]);
      expect(me.plan).toMatchObject({ tier: { code: 'FREE' }, interval: null });
    } finally {
      await t.app.audit.query(`UPDATE tiers SET monthly_credits = 0 WHERE code = 'FREE'`);
      t.app.server.services.catalog.invalidate();
    }
  });

  it('does not charge again when a plan change is retried with its key after the plan moved on', async () => {
    const provider = t.app.server.services.payments as SandboxProvider;
    const charges = () => [...provider.charges.values()].filter((c) => c.accountId === 'retrier').length;
    await openAccount(t.app, 'retrier');
    const first = await changePlan(t.app, 'retrier', 'PRO', 'MONTHLY', 'to-pro');
    expect(charges()).toBe(1);
    provider.failNext(1, 'card declined', 'retrier');
    await advanceDays(t.app, 32);
    expect((await plan('retrier')).plan.status).toBe('PAST_DUE');
    const retry = await changePlan(t.app, 'retrier', 'PRO', 'MONTHLY', 'to-pro');
    expect(retry.data!.changePlan.purchase!.id).toBe(first.data!.changePlan.purchase!.id);
    expect(charges()).toBe(1);
    expect((await plan('retrier')).plan.status).toBe('PAST_DUE');
  });

  it('keeps a failing renewal to its own account, and charges it once however often it is retried', async () => {
    const provider = t.app.server.services.payments as SandboxProvider;
    await changePlan(t.app, 'steady', 'PRO');
    // CREATOR (300 a month, no rollover): its old month expires at the renewal, which then fits.
    await changePlan(t.app, 'overflowing', 'CREATOR');
    // This account's next allowance cannot be granted: its balance would pass 2^31 - 1 (by one credit).
    for (let i = 0; i < 2; i++) {
      await adjustCredits(t.app, 'overflowing', 1_000_000_000, { reason: 'fill' });
    }
    await adjustCredits(t.app, 'overflowing', 2_147_483_647 - 2_000_000_000 - signup - 300 - 299, { reason: 'fill' });
    const periodEnd = (await t.app.rows('SELECT current_period_end FROM accounts WHERE id = $1', ['overflowing']))[0].current_period_end;
    await advanceDays(t.app, 32);
    const renewalsOf = (id: string) => [...provider.charges.values()].filter((c) => c.accountId === id && c.description.includes('renewal')).length;
    // The steady account renewed; the other one's grant failed after its charge, and only its step rolled back.
    expect(renewalsOf('steady')).toBe(1);
    expect((await t.app.rows('SELECT count(*)::int AS n FROM purchases WHERE account_id = $1', ['steady']))[0].n).toBe(2);
    expect((await t.app.rows('SELECT current_period_end FROM accounts WHERE id = $1', ['overflowing']))[0].current_period_end).toEqual(periodEnd);
    expect(renewalsOf('overflowing')).toBe(1);
    // Its old allowance expired meanwhile, so the next runs succeed — with the same charge, not a new one.
    await t.app.server.services.planSweep.renewDue();
    await t.app.server.services.planSweep.renewDue();
    expect(renewalsOf('overflowing')).toBe(1);
    expect((await t.app.rows('SELECT count(*)::int AS n FROM purchases WHERE account_id = $1', ['overflowing']))[0].n).toBe(2);
    expect(renewalsOf('steady')).toBe(1);
  });
});
