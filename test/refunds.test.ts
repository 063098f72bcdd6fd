import { transaction } from '../src/common/db/transaction';
import type { SandboxProvider } from '../src/modules/billing/sandbox-provider';
import { LedgerEntryKind, LotSource } from '../src/modules/ledger/ledger.enums';
import {
  RefundRequestsToReviewDocument,
  ReviewRefundRequestDocument,
  MyPlanDocument,
  AdvanceTestClockDocument,
  CancelGenerationDocument,
  MyNotificationsDocument,
  MyRefundRequestsDocument,
  PurchaseCreditPackDocument,
  RequestRefundDocument,
  StartGenerationDocument,
} from './graphql/generated';
import { ADMIN, adjustCredits, advanceDays, balanceOf, changePlan, openAccount, signupCredits } from './helpers/accounts';
import { startTestApp, useTestApp } from './helpers/test-app';
import { notesOf } from './helpers/notices';

const t = useTestApp({ TEST_CLOCK: '1', JOB_SWEEP_INTERVAL_MS: '3600000' });
let signup: number; // the catalog's sign-up credits: every account starts with them

beforeAll(async () => {
  signup = await signupCredits(t.app);
});

async function buy(sub: string, packCode = 'STARTER'): Promise<string> {
  const r = await t.app.gql(PurchaseCreditPackDocument, { input: { packCode } }, { sub });
  expect(r.data!.purchaseCreditPack.userErrors).toEqual([]);
  return r.data!.purchaseCreditPack.purchase!.id;
}

function refund(sub: string, purchaseId: string, reason?: string) {
  return t.app.gql(RequestRefundDocument, { input: { purchaseId, reason } }, { sub });
}

function start(sub: string) {
  return t.app.gql(StartGenerationDocument, { input: { settings: { type: 'VIDEO', durationSeconds: 5 }, prompt: 'waves' } }, { sub });
}

describe('refunds of credit packs', () => {
  it('refunds in full within 24 hours when no credit was used: credits withdrawn, purchase REFUNDED, money back', async () => {
    const id = await buy('refunder');
    const provider = t.app.server.services.payments as SandboxProvider;
    const before = provider.refunds.length;
    const res = await refund('refunder', id, 'bought by mistake');
    const out = res.data!.requestRefund;
    expect(out.userErrors).toEqual([]);
    expect(out.refundRequest).toMatchObject({
      status: 'APPROVED', amountCents: 500, creditsRevoked: 50, reason: 'bought by mistake',
      decisionReason: 'Refunded in full: asked within 24 hours and no credits used since',
      purchase: { id, status: 'REFUNDED', packCode: 'STARTER' },
    });
    expect(await balanceOf(t.app, 'refunder')).toBe(signup);
    expect(provider.refunds.slice(before)).toEqual([{ ref: `sandbox_${id}`, amountCents: 500 }]);
    const entry = await t.app.audit.query(`SELECT kind, amount, purchase_id FROM ledger_entries WHERE account_id = 'refunder' ORDER BY id DESC LIMIT 1`);
    expect(entry.rows[0]).toEqual({ kind: 'REVOCATION', amount: -50, purchase_id: id });
    const notes = await t.app.gql(MyNotificationsDocument, {}, { sub: 'refunder' });
    expect(notes.data!.me.notifications.edges[0].node).toMatchObject({
      kind: 'REFUND_DECIDED',
      message: 'Your STARTER credit pack was refunded: 5.00 USD is on its way back and its 50 credits were withdrawn.',
    });
  });

  it('denies a refund once a credit was used since the purchase, and keeps the decision', async () => {
    const id = await buy('user-of-credits');
    expect((await start('user-of-credits')).data!.startGeneration.job).toMatchObject({ status: 'QUEUED', credits: 9 });
    const res = await refund('user-of-credits', id);
    const out = res.data!.requestRefund;
    expect(out.userErrors).toEqual([{ code: 'CREDITS_ALREADY_USED', message: '9 credits were used since the purchase; it is no longer refundable', field: null }]);
    expect(out.refundRequest).toMatchObject({ status: 'DENIED', amountCents: 0, creditsRevoked: 0, purchase: { status: 'COMPLETED' } });
    expect(await balanceOf(t.app, 'user-of-credits')).toBe(signup + 50 - 9);
    const kept = await t.app.gql(MyRefundRequestsDocument, {}, { sub: 'user-of-credits' });
    expect(kept.data!.me.refundRequests.edges.map((e) => [e.node.status, e.node.purchase.id])).toEqual([['DENIED', id]]);
  });

  it('does not count generations that were refunded', async () => {
    const id = await buy('changed-mind');
    const job = (await start('changed-mind')).data!.startGeneration.job!.id;
    await t.app.gql(CancelGenerationDocument, { jobId: job }, { sub: 'changed-mind' });
    const res = await refund('changed-mind', id);
    expect(res.data!.requestRefund.refundRequest!.status).toBe('APPROVED');
    expect(await balanceOf(t.app, 'changed-mind')).toBe(signup);
  });

  it('takes a new request after a DENIED one, but none while one is APPROVED or PENDING_REVIEW', async () => {
    const id = await buy('asks-twice');
    await t.app.gql(AdvanceTestClockDocument, { hours: 25 }, ADMIN);
    const first = await refund('asks-twice', id);
    expect(first.data!.requestRefund.userErrors.map((e) => e.code)).toEqual(['REFUND_WINDOW_EXPIRED']);
    const second = await refund('asks-twice', id);
    // A fresh decision (not the first one replayed): denied again, on its own row.
    expect(second.data!.requestRefund.userErrors.map((e) => e.code)).toEqual(['REFUND_WINDOW_EXPIRED']);
    expect(second.data!.requestRefund.refundRequest!.id).not.toBe(first.data!.requestRefund.refundRequest!.id);
    const rows = await t.app.audit.query('SELECT status FROM refund_requests WHERE purchase_id = $1 ORDER BY created_at', [id]);
    expect(rows.rows).toEqual([{ status: 'DENIED' }, { status: 'DENIED' }]);
  });

  it('takes one request per purchase, from its owner only', async () => {
    const id = await buy('once');
    await openAccount(t.app, 'stranger');
    const foreign = await refund('stranger', id);
    expect(foreign.data!.requestRefund).toEqual({
      refundRequest: null,
      userErrors: [{ code: 'NOT_FOUND', message: 'No purchase of yours has this id', field: ['input', 'purchaseId'] }],
    });
    expect((await refund('once', id)).data!.requestRefund.refundRequest!.status).toBe('APPROVED');
    const again = await refund('once', id);
    expect(again.data!.requestRefund.userErrors.map((e) => e.code)).toEqual(['REFUND_ALREADY_REQUESTED']);
    const rows = await t.app.audit.query('SELECT count(*)::int AS n FROM refund_requests WHERE purchase_id = $1', [id]);
    expect(rows.rows[0].n).toBe(1);
  });

  it('sends no top-up warning for a refund the user asked for, and warns as usual once the balance climbs back and falls again', async () => {
    const sub = 'quiet-refund';
    await openAccount(t.app, sub);
    await adjustCredits(t.app, sub, -signup, { reason: 'spend the bonus before buying' });
    const warnings = async () =>
      (await t.app.audit.query(`SELECT kind FROM notifications WHERE account_id = $1 AND kind IN ('LOW_CREDITS', 'CREDITS_DEPLETED')`, [sub])).rows.map((r) => r.kind).sort();
    const atZero = await warnings();
    expect(atZero).toEqual(['CREDITS_DEPLETED', 'LOW_CREDITS']);
    const id = await buy(sub); // 0 -> 50
    expect((await refund(sub, id)).data!.requestRefund.refundRequest!.status).toBe('APPROVED'); // 50 -> 0
    expect(await balanceOf(t.app, sub)).toBe(0);
    expect(await warnings()).toEqual(atZero);
    // Bought again and spent below the warning level (5): LOW fires as usual.
    await buy(sub);
    await adjustCredits(t.app, sub, -47, { reason: 'spend' });
    expect(await warnings()).toEqual(['CREDITS_DEPLETED', 'LOW_CREDITS', 'LOW_CREDITS']);
  });

  it('lets exactly one of a refund and a racing generation start win', async () => {
    for (let i = 0; i < 8; i++) {
      const sub = `racer-${i}`;
      await openAccount(t.app, sub);
      await adjustCredits(t.app, sub, -signup, { reason: 'spend the bonus before buying' });
      const id = await buy(sub);
      const [s, r] = await Promise.all([start(sub), refund(sub, id)]);
      const started = s.data!.startGeneration.job !== null;
      const refunded = r.data!.requestRefund.refundRequest?.status === 'APPROVED';
      expect(started !== refunded).toBe(true);
      if (started) expect(r.data!.requestRefund.userErrors[0].code).toBe('CREDITS_ALREADY_USED');
      else expect(s.data!.startGeneration.userErrors[0].code).toBe('INSUFFICIENT_CREDITS');
      expect(await balanceOf(t.app, sub)).toBe(started ? 41 : 0);
    }
  });

  it('denies a refund asked after 24 hours', async () => {
    const id = await buy('late');
    const moved = await t.app.gql(AdvanceTestClockDocument, { hours: 24.5 }, ADMIN);
    expect(moved.errors).toBeUndefined();
    const res = await refund('late', id);
    expect(res.data!.requestRefund.userErrors[0].code).toBe('REFUND_WINDOW_EXPIRED');
    expect(res.data!.requestRefund.refundRequest!.status).toBe('DENIED');
    expect(await balanceOf(t.app, 'late')).toBe(signup + 50);
  });
});

describe('refunds of plans', () => {
  async function subscribeTo(sub: string, tier: 'CREATOR' | 'PRO', interval: 'MONTHLY' | 'ANNUAL'): Promise<string> {
    const r = await changePlan(t.app, sub, tier, interval);
    expect(r.data!.changePlan.userErrors).toEqual([]);
    return r.data!.changePlan.purchase!.id;
  }

  it('refunds a plan in full within 24 hours when no credit was used, and ends it', async () => {
    const id = await subscribeTo('plan-refunder', 'PRO', 'MONTHLY');
    expect(await balanceOf(t.app, 'plan-refunder')).toBe(signup + 1000);
    const res = await refund('plan-refunder', id);
    expect(res.data!.requestRefund.refundRequest).toMatchObject({ status: 'APPROVED', amountCents: 2900, creditsRevoked: 1000, purchase: { status: 'REFUNDED' } });
    expect(await balanceOf(t.app, 'plan-refunder')).toBe(signup);
    const me = await t.app.gql(MyPlanDocument, {}, { sub: 'plan-refunder' });
    expect(me.data!.me.plan).toMatchObject({ tier: { code: 'FREE' }, status: 'CANCELED' });
  });

  it('refunds plan purchases latest first: an upgrade goes back to the tier the period was paid for', async () => {
    const first = await subscribeTo('upgrade-refunder', 'CREATOR', 'MONTHLY');
    const up = await changePlan(t.app, 'upgrade-refunder', 'PRO');
    const upgrade = up.data!.changePlan.purchase!;
    const earlier = await refund('upgrade-refunder', first);
    expect(earlier.data!.requestRefund).toEqual({
      refundRequest: null,
      userErrors: [{ code: 'INVALID_STATE', message: 'Only your latest plan purchase can be refunded', field: ['input', 'purchaseId'] }],
    });
    const res = await refund('upgrade-refunder', upgrade.id);
    expect(res.data!.requestRefund.refundRequest).toMatchObject({ status: 'APPROVED', amountCents: upgrade.amountCents, creditsRevoked: upgrade.credits });
    const me = await t.app.gql(MyPlanDocument, {}, { sub: 'upgrade-refunder' });
    expect(me.data!.me.plan).toMatchObject({ tier: { code: 'CREATOR' }, status: 'ACTIVE' });
    expect(await balanceOf(t.app, 'upgrade-refunder')).toBe(signup + 300);
  });

  it('sends an annual plan past the window to review with the price paid less the months started at the monthly price, and an admin approves: the plan runs to the end of its current month, that month’s credits kept', async () => {
    const id = await subscribeTo('annual-approved', 'CREATOR', 'ANNUAL');
    await advanceDays(t.app, 40); // two months started
    const res = await refund('annual-approved', id, 'moving on');
    const req = res.data!.requestRefund.refundRequest!;
    expect(res.data!.requestRefund.userErrors).toEqual([]);
    // 115.20 paid − 2 months started × 12.00 a month: never less than the monthly plan would have cost.
    expect(req).toMatchObject({ status: 'PENDING_REVIEW', amountCents: 11520 - 2 * 1200, creditsRevoked: 0 });
    expect(req.decisionReason).toBe(
      'Annual plan past the 24-hour window: 2 of 12 months started at 12.00 USD each; 91.20 USD of 115.20 USD proposed for a partial refund, the plan ending with its current month; an admin decides',
    );
    const queue = await t.app.gql(RefundRequestsToReviewDocument, {}, ADMIN);
    expect(queue.data!.refundRequestsToReview.edges.map((e) => e.node.id)).toEqual([req.id]); // the first request of this file to wait for review
    expect((await t.app.gql(RefundRequestsToReviewDocument, {}, { sub: 'annual-approved' })).errors![0].extensions!.code).toBe('FORBIDDEN');

    const provider = t.app.server.services.payments as SandboxProvider;
    const before = provider.refunds.length;
    const [month] = (await t.app.audit.query('SELECT allowance_period_end FROM accounts WHERE id = $1', ['annual-approved'])).rows;
    const decided = await t.app.gql(ReviewRefundRequestDocument, { input: { id: req.id, approve: true } }, ADMIN);
    expect(decided.data!.reviewRefundRequest.refundRequest).toMatchObject({ status: 'APPROVED', amountCents: 9120, creditsRevoked: 0, purchase: { status: 'PARTIALLY_REFUNDED' } });
    expect(provider.refunds.slice(before)).toEqual([{ ref: `sandbox_${id}`, amountCents: 9120 }]);
    // The current month (the second) was paid for: its credits stay, the plan ends with it.
    expect(await balanceOf(t.app, 'annual-approved')).toBe(signup + 300);
    const me = await t.app.gql(MyPlanDocument, {}, { sub: 'annual-approved' });
    expect(me.data!.me.plan).toMatchObject({ tier: { code: 'CREATOR' }, status: 'ACTIVE', cancelAtPeriodEnd: true, currentPeriodEnd: month.allowance_period_end.toISOString() });
    await advanceDays(t.app, 31);
    const after = await t.app.gql(MyPlanDocument, {}, { sub: 'annual-approved' });
    expect(after.data!.me.plan).toMatchObject({ tier: { code: 'FREE' }, status: 'CANCELED' });
    expect(await balanceOf(t.app, 'annual-approved')).toBe(signup);
    const ended = await t.app.audit.query(`SELECT kind FROM notifications WHERE account_id = $1 AND kind IN ('PLAN_ENDED', 'PLAN_RENEWED')`, ['annual-approved']);
    expect(ended.rows).toEqual([{ kind: 'PLAN_ENDED' }]);
    expect(await t.app.audit.query(`SELECT count(*)::int AS n FROM purchases WHERE account_id = $1`, ['annual-approved']).then((r) => r.rows[0].n)).toBe(1);
    const again = await t.app.gql(ReviewRefundRequestDocument, { input: { id: req.id, approve: false } }, ADMIN);
    expect(again.data!.reviewRefundRequest.userErrors.map((e) => e.code)).toEqual(['INVALID_STATE']);
  });

  it('refunds what is unused when the admin decides, if months went by while the request waited', async () => {
    const id = await subscribeTo('annual-waited', 'CREATOR', 'ANNUAL');
    await advanceDays(t.app, 40);
    const req = (await refund('annual-waited', id)).data!.requestRefund.refundRequest!;
    expect(req.amountCents).toBe(11520 - 2 * 1200); // 2 months started
    await advanceDays(t.app, 31);
    const decided = await t.app.gql(ReviewRefundRequestDocument, { input: { id: req.id, approve: true } }, ADMIN);
    expect(decided.data!.reviewRefundRequest.refundRequest).toMatchObject({ status: 'APPROVED', amountCents: 11520 - 3 * 1200 }); // 3 started
  });

  it('takes the annual partial refund later although an early request was DENIED for a credit used', async () => {
    const id = await subscribeTo('annual-early', 'CREATOR', 'ANNUAL');
    expect((await start('annual-early')).data!.startGeneration.job).toMatchObject({ status: 'QUEUED', credits: 9 });
    const early = await refund('annual-early', id);
    expect(early.data!.requestRefund.userErrors.map((e) => e.code)).toEqual(['CREDITS_ALREADY_USED']);
    await advanceDays(t.app, 40);
    const later = await refund('annual-early', id);
    expect(later.data!.requestRefund.userErrors).toEqual([]);
    expect(later.data!.requestRefund.refundRequest).toMatchObject({ status: 'PENDING_REVIEW', amountCents: 11520 - 2 * 1200 });
    const third = await refund('annual-early', id);
    expect(third.data!.requestRefund.userErrors.map((e) => e.code)).toEqual(['REFUND_ALREADY_REQUESTED']);
    expect(third.data!.requestRefund.refundRequest!.id).toBe(later.data!.requestRefund.refundRequest!.id);
  });

  it('denies at decision time an approval of a purchase the year’s renewal replaced, keeping the plan and the renewal unrefunded', async () => {
    const id = await subscribeTo('annual-stale', 'CREATOR', 'ANNUAL');
    await advanceDays(t.app, 40);
    const req = (await refund('annual-stale', id)).data!.requestRefund.refundRequest!;
    expect(req.status).toBe('PENDING_REVIEW');
    for (let d = 40; d < 370; d += 30) await advanceDays(t.app, 30); // the year renews: P2
    const plans = await t.app.audit.query(`SELECT id, status FROM purchases WHERE account_id = $1 ORDER BY created_at`, ['annual-stale']);
    expect(plans.rows.map((r) => r.status)).toEqual(['COMPLETED', 'COMPLETED']);
    const provider = t.app.server.services.payments as SandboxProvider;
    const refundsBefore = provider.refunds.length;
    const balanceBefore = await balanceOf(t.app, 'annual-stale');
    const decided = await t.app.gql(ReviewRefundRequestDocument, { input: { id: req.id, approve: true } }, ADMIN);
    expect(decided.data!.reviewRefundRequest.userErrors).toEqual([]);
    expect(decided.data!.reviewRefundRequest.refundRequest).toMatchObject({
      status: 'DENIED', amountCents: 0, creditsRevoked: 0,
      decisionReason: 'This purchase is no longer your current plan purchase; nothing was refunded',
    });
    expect(provider.refunds.length).toBe(refundsBefore);
    expect(await balanceOf(t.app, 'annual-stale')).toBe(balanceBefore);
    const after = await t.app.audit.query(`SELECT id, status FROM purchases WHERE account_id = $1 ORDER BY created_at`, ['annual-stale']);
    expect(after.rows).toEqual(plans.rows);
    const me = await t.app.gql(MyPlanDocument, {}, { sub: 'annual-stale' });
    expect(me.data!.me.plan).toMatchObject({ tier: { code: 'CREATOR' }, status: 'ACTIVE', cancelAtPeriodEnd: false });
  });

  it('ends a refunded plan with PLAN_ENDED, never PLAN_RENEWED', async () => {
    const id = await subscribeTo('plan-ended', 'PRO', 'MONTHLY');
    expect((await refund('plan-ended', id)).data!.requestRefund.refundRequest!.status).toBe('APPROVED');
    const notes = await notesOf(t.app, 'plan-ended', ['PLAN_ENDED', 'PLAN_RENEWED']);
    expect(notes).toEqual([{ kind: 'PLAN_ENDED', message: 'Your Pro plan ended with its refund; you are on the Free plan now.' }]);
  });

  it('lets an admin deny a request under review, keeping the plan', async () => {
    const id = await subscribeTo('annual-denied', 'CREATOR', 'ANNUAL');
    await advanceDays(t.app, 2);
    const req = (await refund('annual-denied', id)).data!.requestRefund.refundRequest!;
    expect(req).toMatchObject({ status: 'PENDING_REVIEW', amountCents: 11520 - 1200 }); // 1 month started
    const user = await t.app.gql(ReviewRefundRequestDocument, { input: { id: req.id, approve: true } }, { sub: 'annual-denied' });
    expect(user.errors![0].extensions!.code).toBe('FORBIDDEN');
    const decided = await t.app.gql(ReviewRefundRequestDocument, { input: { id: req.id, approve: false, note: 'outside the terms' } }, ADMIN);
    expect(decided.data!.reviewRefundRequest.refundRequest).toMatchObject({ status: 'DENIED', amountCents: 0, decisionReason: 'outside the terms', purchase: { status: 'COMPLETED' } });
    const me = await t.app.gql(MyPlanDocument, {}, { sub: 'annual-denied' });
    expect(me.data!.me.plan).toMatchObject({ tier: { code: 'CREATOR' }, status: 'ACTIVE' });
  });
});

describe('the test clock', () => {
  it('moves forward for admins and expires the lots that fell due before it returns', async () => {
    await openAccount(t.app, 'expiring');
    const { clock, ledger, db } = t.app.server.services;
    const inTwoHours = new Date(clock.now().getTime() + 2 * 3600 * 1000);
    await transaction(db, (tx) =>
      ledger.grant(tx, { accountId: 'expiring', amount: 40, source: LotSource.MONTHLY_ALLOWANCE, kind: LedgerEntryKind.GRANT, description: 'allowance', expiresAt: inTwoHours }),
    );
    await adjustCredits(t.app, 'expiring', -10, { reason: 'use' }); // from the expiring lot first
    const before = clock.now().getTime();
    const res = await t.app.gql(AdvanceTestClockDocument, { hours: 3 }, ADMIN);
    expect(new Date(res.data!.advanceTestClock).getTime() - before).toBeGreaterThanOrEqual(3 * 3600 * 1000);
    expect(await balanceOf(t.app, 'expiring')).toBe(signup);
    const expiry = await t.app.audit.query(`SELECT kind, amount, description FROM ledger_entries WHERE account_id = 'expiring' ORDER BY id DESC LIMIT 1`);
    expect(expiry.rows[0]).toEqual({ kind: 'EXPIRY', amount: -30, description: 'Credits expired' });
    const user = await t.app.gql(AdvanceTestClockDocument, { hours: 1 }, { sub: 'expiring' });
    expect(user.errors![0].extensions!.code).toBe('FORBIDDEN');
    const bad = await t.app.gql(AdvanceTestClockDocument, { hours: -1 }, ADMIN);
    expect(bad.errors![0].extensions!.code).toBe('BAD_USER_INPUT');
  });

  it('is refused when the test clock is not enabled', async () => {
    const plain = await startTestApp();
    try {
      const res = await plain.gql(AdvanceTestClockDocument, { hours: 1 }, ADMIN);
      expect(res.errors!.map((e) => [e.extensions!.code, e.message])).toEqual([['FORBIDDEN', 'The test clock is not enabled (TEST_CLOCK=1, never in production)']]);
    } finally {
      await plain.stop();
    }
  });
});
