/**
 * Plans under PAYMENT_PROVIDER=stripe: subscription checkouts, renewals driven by Stripe's
 * invoices, upgrades through prorated subscription updates, cancellation and refunds told to
 * Stripe. Events are signed with the library's test-header helper; the library talks to a local
 * stub of Stripe's API (both in helpers/stripe-stub.ts). Nothing reaches the network.
 */
import { randomUUID } from 'node:crypto';
import { derivedId } from '../src/common/ids';
import { addMonths } from '../src/modules/billing/plans/plan-calendar';
import { AdvanceTestClockDocument, CancelPlanAtStripeDocument, ChangePlanWithCheckoutDocument, MyPlanDocument, RequestRefundDocument, ReviewRefundRequestDocument } from './graphql/generated';
import { ADMIN, advanceDays, balanceOf, signupCredits } from './helpers/accounts';
import { deliverEvent, planCheckoutCompleted as checkoutCompleted, stripeEvent as event, useStripeApp } from './helpers/stripe-stub';
import { startTestApp } from './helpers/test-app';

const t = useStripeApp({ TEST_CLOCK: '1', JOB_SWEEP_INTERVAL_MS: '3600000' });
const { stub } = t;
let signup: number; // the catalog's sign-up credits: every account starts with them

beforeAll(async () => {
  signup = await signupCredits(t.app);
});

// ---- events, signed as Stripe signs them ----

function invoiceEvent(eventId: string, type: string, i: { id: string; subscription: string; reason: string; amountPaid: number; metadata?: Record<string, string> }) {
  return event(eventId, type, {
    id: i.id, object: 'invoice', billing_reason: i.reason, amount_paid: type === 'invoice.payment_failed' ? 0 : i.amountPaid,
    parent: { type: 'subscription_details', subscription_details: { subscription: i.subscription, metadata: i.metadata ?? {} } },
  });
}

const deliver = (e: object, opts?: { secret?: string; body?: string }) => deliverEvent(t.app, e, opts);

// ---- the API and the database ----

function change(sub: string, tier: 'FREE' | 'CREATOR' | 'PRO' | 'MAX', interval: 'MONTHLY' | 'ANNUAL' = 'MONTHLY', idempotencyKey?: string) {
  return t.app.gql(ChangePlanWithCheckoutDocument, { input: { tier, interval, idempotencyKey } }, { sub }).then((r) => {
    expect(r.errors).toBeUndefined();
    return r.data!.changePlan;
  });
}

async function plan(sub: string) {
  return (await t.app.gql(MyPlanDocument, {}, { sub })).data!.me.plan;
}

/** Moves the clock to `ms` before the account's current period end. */
async function advanceToBeforePeriodEnd(sub: string, ms: number): Promise<void> {
  const { current_period_end: end } = await t.app.one<{ current_period_end: Date }>('SELECT current_period_end FROM accounts WHERE id = $1', [sub]);
  const hours = (end.getTime() - ms - t.app.server.services.clock.now().getTime()) / 3_600_000;
  const r = await t.app.gql(AdvanceTestClockDocument, { hours }, ADMIN);
  expect(r.errors).toBeUndefined();
}

const refundCalls = (invoice: string) => stub.callsTo('POST', '/v1/refunds').filter((c) => c.body.payment_intent === `pi_for_${invoice}`).map((c) => c.body);

const count = async (sql: string, params: unknown[]) => (await t.app.one<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, params)).n;
const grants = (sub: string) => count('allowance_grants WHERE account_id = $1', [sub]);
const planPurchases = (sub: string) => count(`purchases WHERE account_id = $1 AND kind = 'PLAN'`, [sub]);

/** A paid plan through checkout and its completion webhook: what the tests build on. */
async function subscribe(sub: string, tier: 'CREATOR' | 'PRO' | 'MAX' = 'PRO') {
  const out = await change(sub, tier);
  expect(out.userErrors).toEqual([]);
  const session = out.checkoutUrl!.split('/').pop()!;
  const ids = { session, purchaseId: out.purchase!.id, accountId: sub, subscription: `sub_${sub}`, invoice: `in_first_${sub}` };
  stub.paidSessions.add(session);
  stub.subscriptionAmount.set(ids.subscription, out.purchase!.amountCents);
  expect(await deliver(checkoutCompleted(`evt_paid_${sub}`, ids))).toBe(200);
  return ids;
}

describe('plans billed by Stripe', () => {
  it('starts a new plan through a subscription Checkout Session: PENDING until the completion webhook, then ACTIVE with one allowance grant', async () => {
    const out = await change('sp-new', 'PRO', 'MONTHLY');
    expect(out.userErrors).toEqual([]);
    expect(out.checkoutUrl).toMatch(/^https:\/\/checkout\.stripe\.com\/c\/pay\/cs_test_\d+$/);
    expect(out.purchase).toMatchObject({ kind: 'PLAN', status: 'PENDING', tier: 'PRO', interval: 'MONTHLY', credits: 1000, amountCents: 2900, completedAt: null });
    expect(out.plan).toMatchObject({ tier: { code: 'FREE' }, status: 'ACTIVE', currentPeriodEnd: null });
    expect(out.balance).toEqual({ available: signup });
    const [call] = stub.calls.filter((c) => c.idempotencyKey === `plan-checkout-${out.purchase!.id}`);
    expect(call.path).toBe('/v1/checkout/sessions');
    expect(call.body).toMatchObject({
      mode: 'subscription',
      client_reference_id: out.purchase!.id,
      'line_items[0][price_data][unit_amount]': '2900',
      'line_items[0][price_data][currency]': 'usd',
      'line_items[0][price_data][recurring][interval]': 'month',
      'line_items[0][price_data][product_data][name]': 'Pro plan',
      'subscription_data[metadata][accountId]': 'sp-new',
    });

    // Asking again for the same plan returns the open checkout: no second session.
    const sessions = stub.callsTo('POST', '/v1/checkout/sessions').length;
    const again = await change('sp-new', 'PRO', 'MONTHLY');
    expect(again.purchase!.id).toBe(out.purchase!.id);
    expect(again.checkoutUrl).toBe(out.checkoutUrl);
    expect(stub.callsTo('POST', '/v1/checkout/sessions').length).toBe(sessions);

    const session = out.checkoutUrl!.split('/').pop()!;
    const completed = checkoutCompleted('evt_sp_new', { session, purchaseId: out.purchase!.id, accountId: 'sp-new', subscription: 'sub_sp_new', invoice: 'in_sp_new' });
    expect(await deliver(completed)).toBe(200);
    const me = await plan('sp-new');
    expect(me).toMatchObject({ tier: { code: 'PRO' }, interval: 'MONTHLY', status: 'ACTIVE', cancelAtPeriodEnd: false });
    expect(new Date(me.currentPeriodEnd!).getTime()).toBe(addMonths(new Date(me.currentPeriodStart!), 1).getTime());
    expect(await balanceOf(t.app, 'sp-new')).toBe(signup + 1000);
    expect(await t.app.one('SELECT status, provider_ref, amount_cents, checkout_url FROM purchases WHERE id = $1', [out.purchase!.id])).toEqual({
      status: 'COMPLETED', provider_ref: 'in_sp_new', amount_cents: 2900, checkout_url: null,
    });
    expect(await t.app.one('SELECT subscription_ref, customer_ref FROM accounts WHERE id = $1', ['sp-new'])).toEqual({
      subscription_ref: 'sub_sp_new', customer_ref: 'cus_sp-new',
    });

    // Redelivered (five at once, then once more), and the first invoice's own invoice.paid: nothing more.
    expect(await Promise.all(Array.from({ length: 5 }, () => deliver(completed)))).toEqual([200, 200, 200, 200, 200]);
    expect(await deliver(completed)).toBe(200);
    expect(await deliver(invoiceEvent('evt_sp_new_inv', 'invoice.paid', { id: 'in_sp_new', subscription: 'sub_sp_new', reason: 'subscription_create', amountPaid: 2900 }))).toBe(200);
    expect(await balanceOf(t.app, 'sp-new')).toBe(signup + 1000);
    expect(await grants('sp-new')).toBe(1);
    expect(await planPurchases('sp-new')).toBe(1);
    expect(await count(`ledger_entries WHERE account_id = $1 AND kind = 'GRANT' AND purchase_id IS NOT NULL`, ['sp-new'])).toBe(1);
  });

  it('renews from the paid renewal invoice exactly once, however often and concurrently it is delivered; the sweep never charges it', async () => {
    await subscribe('sp-renew');
    const before = await t.app.one<{ current_period_start: Date; current_period_end: Date }>('SELECT current_period_start, current_period_end FROM accounts WHERE id = $1', ['sp-renew']);
    const calls = stub.calls.length;

    await advanceDays(t.app, 31);
    // The period ended; the sweep waited for Stripe: no charge, no call, no new period; the month's credits stay a month more (PRO's rollover).
    expect(stub.calls.length).toBe(calls);
    expect(await plan('sp-renew')).toMatchObject({ tier: { code: 'PRO' }, status: 'ACTIVE', currentPeriodEnd: before.current_period_end.toISOString() });
    expect(await planPurchases('sp-renew')).toBe(1);
    expect(await balanceOf(t.app, 'sp-renew')).toBe(signup + 1000);
    expect(await t.app.rows(`SELECT amount FROM ledger_entries WHERE account_id = $1 AND kind = 'EXPIRY'`, ['sp-renew'])).toEqual([]);

    const renewal = { id: 'in_renew_1', subscription: 'sub_sp-renew', reason: 'subscription_cycle', amountPaid: 2900 };
    const paid = invoiceEvent('evt_renew_1', 'invoice.paid', renewal);
    expect(await Promise.all(Array.from({ length: 5 }, () => deliver(paid)))).toEqual([200, 200, 200, 200, 200]);
    expect(await deliver(paid)).toBe(200);
    // Another event about the same invoice changes nothing either.
    expect(await deliver(invoiceEvent('evt_renew_1_succeeded', 'invoice.payment_succeeded', renewal))).toBe(200);

    const start = before.current_period_end;
    expect(await t.app.rows('SELECT id, status, tier, amount_cents, credits, provider_ref, period_start, period_end FROM purchases WHERE account_id = $1 AND provider_ref = $2', ['sp-renew', 'in_renew_1'])).toEqual([{
      id: derivedId('renewal', 'sp-renew', start.toISOString()), status: 'COMPLETED', tier: 'PRO', amount_cents: 2900, credits: 1000, provider_ref: 'in_renew_1',
      // On the plan's anchor day, as Stripe bills it: two months from the first period's start (Jan 31 → Feb 28 → Mar 31).
      period_start: start, period_end: addMonths(before.current_period_start, 2),
    }]);
    expect(await planPurchases('sp-renew')).toBe(2);
    expect(await grants('sp-renew')).toBe(2);
    expect(await balanceOf(t.app, 'sp-renew')).toBe(signup + 2000);
    expect(await plan('sp-renew')).toMatchObject({ status: 'ACTIVE', currentPeriodStart: start.toISOString(), currentPeriodEnd: addMonths(before.current_period_start, 2).toISOString() });
    expect(await count(`notifications WHERE account_id = $1 AND kind = 'PLAN_RENEWED'`, ['sp-renew'])).toBe(1);
  });

  it('leaves the plan PAST_DUE with no allowance when the renewal invoice fails, and renews it when Stripe collects it later', async () => {
    await subscribe('sp-failing');
    await advanceDays(t.app, 31);
    const renewal = { id: 'in_fail_1', subscription: 'sub_sp-failing', reason: 'subscription_cycle', amountPaid: 2900 };
    expect(await deliver(invoiceEvent('evt_fail_1', 'invoice.payment_failed', renewal))).toBe(200);
    expect(await deliver(invoiceEvent('evt_fail_1', 'invoice.payment_failed', renewal))).toBe(200);
    expect((await plan('sp-failing')).status).toBe('PAST_DUE');
    expect(await balanceOf(t.app, 'sp-failing')).toBe(signup + 1000); // no new allowance; the first month's is kept by PRO's rollover
    expect(await grants('sp-failing')).toBe(1);
    expect(await planPurchases('sp-failing')).toBe(1);

    // Stripe's retry collects it: the period starts, its allowance comes; a late failure of the same invoice changes nothing.
    expect(await deliver(invoiceEvent('evt_fail_1_paid', 'invoice.paid', renewal))).toBe(200);
    expect(await deliver(invoiceEvent('evt_fail_1_late', 'invoice.payment_failed', renewal))).toBe(200);
    expect((await plan('sp-failing')).status).toBe('ACTIVE');
    expect(await balanceOf(t.app, 'sp-failing')).toBe(signup + 2000);
    expect(await grants('sp-failing')).toBe(2);
    expect(await planPurchases('sp-failing')).toBe(2);
  });

  it('ends the plan when Stripe deletes the subscription, and ignores that subscription afterwards', async () => {
    await subscribe('sp-deleted', 'MAX');
    expect(await deliver(event('evt_deleted_1', 'customer.subscription.deleted', { id: 'sub_sp-deleted', object: 'subscription', status: 'canceled' }))).toBe(200);
    expect(await plan('sp-deleted')).toMatchObject({ tier: { code: 'FREE' }, status: 'CANCELED', interval: null, currentPeriodEnd: null });
    expect(await t.app.one('SELECT subscription_ref FROM accounts WHERE id = $1', ['sp-deleted'])).toEqual({ subscription_ref: null });
    // The credits already granted stay until their month ends, as with any cancellation.
    expect(await balanceOf(t.app, 'sp-deleted')).toBe(signup + 3000);
    // An invoice of that subscription collected afterwards gives no period: it is refunded in full.
    expect(await deliver(invoiceEvent('evt_deleted_late', 'invoice.paid', { id: 'in_deleted_late', subscription: 'sub_sp-deleted', reason: 'subscription_cycle', amountPaid: 7900 }))).toBe(200);
    expect(refundCalls('in_deleted_late')).toEqual([{ payment_intent: 'pi_for_in_deleted_late', amount: '7900' }]);
    expect(await t.app.rows(`SELECT status, credits FROM purchases WHERE account_id = $1 AND kind = 'PLAN' ORDER BY created_at`, ['sp-deleted'])).toEqual([
      { status: 'COMPLETED', credits: 3000 }, { status: 'REFUNDED', credits: 0 },
    ]);
    expect(await grants('sp-deleted')).toBe(1);
    expect((await plan('sp-deleted')).tier.code).toBe('FREE');
  });

  it('refuses a badly signed or tampered event with 400 and changes nothing', async () => {
    const out = await change('sp-forger', 'MAX');
    const session = out.checkoutUrl!.split('/').pop()!;
    const forged = checkoutCompleted('evt_forged_plan', { session, purchaseId: out.purchase!.id, accountId: 'sp-forger', subscription: 'sub_forged', invoice: 'in_forged' });
    expect(await deliver(forged, { secret: 'whsec_wrong' })).toBe(400);
    // Signed, then altered on the way.
    const tampered = JSON.stringify({ ...forged, id: 'evt_tampered_plan' });
    expect(await deliver(forged, { body: tampered })).toBe(400);
    expect(await plan('sp-forger')).toMatchObject({ tier: { code: 'FREE' } });
    expect(await t.app.one('SELECT status FROM purchases WHERE id = $1', [out.purchase!.id])).toEqual({ status: 'PENDING' });
    expect(await balanceOf(t.app, 'sp-forger')).toBe(signup);
    expect(await count(`webhook_events WHERE event_id IN ('evt_forged_plan', 'evt_tampered_plan')`, [])).toBe(0);
  });

  it('refunds a plan through Stripe: the payment of its invoice is refunded, the subscription ends at once, so does the plan', async () => {
    const ids = await subscribe('sp-refund');
    const r = await t.app.gql(RequestRefundDocument, { input: { purchaseId: ids.purchaseId } }, { sub: 'sp-refund' });
    expect(r.data!.requestRefund.userErrors).toEqual([]);
    expect(r.data!.requestRefund.refundRequest).toMatchObject({ status: 'APPROVED', amountCents: 2900, creditsRevoked: 1000, purchase: { status: 'REFUNDED' } });
    expect(stub.callsTo('GET', `/v1/invoices/${ids.invoice}`)).toHaveLength(1);
    const refund = stub.callsTo('POST', '/v1/refunds').filter((c) => c.body.payment_intent === `pi_for_${ids.invoice}`);
    expect(refund.map((c) => c.body)).toEqual([{ payment_intent: `pi_for_${ids.invoice}`, amount: '2900' }]);
    expect(stub.callsTo('DELETE', `/v1/subscriptions/${ids.subscription}`)).toHaveLength(1);
    expect(await plan('sp-refund')).toMatchObject({ tier: { code: 'FREE' }, status: 'CANCELED' });
    expect(await balanceOf(t.app, 'sp-refund')).toBe(signup);

    // Stripe confirms the refund (matched by the refund's id), then reports the subscription it deleted: nothing else changes.
    const { provider_ref: refundId } = await t.app.one<{ provider_ref: string }>('SELECT provider_ref FROM refund_requests WHERE purchase_id = $1', [ids.purchaseId]);
    expect(await deliver(event('evt_refund_ok', 'refund.updated', { id: refundId, object: 'refund', status: 'succeeded', payment_intent: `pi_for_${ids.invoice}` }))).toBe(200);
    expect(await t.app.one('SELECT provider_confirmed_at IS NOT NULL AS confirmed FROM refund_requests WHERE purchase_id = $1', [ids.purchaseId])).toEqual({ confirmed: true });
    const notes = await count('notifications WHERE account_id = $1', ['sp-refund']);
    expect(await deliver(event('evt_refund_deleted', 'customer.subscription.deleted', { id: ids.subscription, object: 'subscription', status: 'canceled' }))).toBe(200);
    expect(await count('notifications WHERE account_id = $1', ['sp-refund'])).toBe(notes);
    expect(await balanceOf(t.app, 'sp-refund')).toBe(signup);
  });

  it('upgrades mid-period through a prorated subscription update: Stripe’s proration charge recorded, our prorated credits granted once', async () => {
    const ids = await subscribe('sp-upgrade', 'PRO');
    await advanceDays(t.app, 10);
    const a = await t.app.one<{ allowance_period_start: Date; allowance_period_end: Date }>('SELECT allowance_period_start, allowance_period_end FROM accounts WHERE id = $1', ['sp-upgrade']);
    const now = t.app.server.services.clock.now().getTime();
    stub.upgradeAmount = 3387;
    const out = await change('sp-upgrade', 'MAX', 'MONTHLY', 'up-1');
    expect(out.userErrors).toEqual([]);
    expect(out.checkoutUrl).toBeNull();
    const monthLeft = (a.allowance_period_end.getTime() - now) / (a.allowance_period_end.getTime() - a.allowance_period_start.getTime());
    expect(out.purchase).toMatchObject({ kind: 'PLAN', status: 'COMPLETED', tier: 'MAX', amountCents: 3387 });
    expect(Math.abs(out.purchase!.credits - Math.floor(2000 * monthLeft))).toBeLessThanOrEqual(1);
    expect(out.plan!.tier.code).toBe('MAX');
    expect(out.balance!.available).toBe(signup + 1000 + out.purchase!.credits);

    const update = stub.calls.find((c) => c.idempotencyKey === `plan-upgrade-${out.purchase!.id}`)!;
    expect(update.path).toBe(`/v1/subscriptions/${ids.subscription}`);
    const price = stub.calls.find((c) => c.idempotencyKey === `plan-price-${out.purchase!.id}`)!;
    expect(price.body).toMatchObject({ unit_amount: '7900', currency: 'usd', 'recurring[interval]': 'month', 'product_data[name]': 'Max plan' });
    expect(update.body).toMatchObject({
      'items[0][id]': `si_${ids.subscription}`, proration_behavior: 'always_invoice', payment_behavior: 'error_if_incomplete',
      'metadata[upgradePurchaseId]': out.purchase!.id, 'metadata[upgradeTier]': 'MAX',
    });
    expect(update.body['items[0][price]']).toMatch(/^price_\d+$/);

    // The proration invoice's own webhook, and a retry with the key: nothing more.
    const { provider_ref: invoice } = await t.app.one<{ provider_ref: string }>('SELECT provider_ref FROM purchases WHERE id = $1', [out.purchase!.id]);
    const metadata = { upgradePurchaseId: out.purchase!.id, upgradeTier: 'MAX' };
    expect(await deliver(invoiceEvent('evt_upgrade_inv', 'invoice.paid', { id: invoice, subscription: ids.subscription, reason: 'subscription_update', amountPaid: 3387, metadata }))).toBe(200);
    const retry = await change('sp-upgrade', 'MAX', 'MONTHLY', 'up-1');
    expect(retry.purchase!.id).toBe(out.purchase!.id);
    expect(await planPurchases('sp-upgrade')).toBe(2);
    expect(await balanceOf(t.app, 'sp-upgrade')).toBe(signup + 1000 + out.purchase!.credits);
    expect(stub.calls.filter((c) => c.path === `/v1/subscriptions/${ids.subscription}` && c.method === 'POST')).toHaveLength(1);
  });

  it('refunds an upgrade through Stripe: its proration payment back, the paid tier again, and Stripe charges that tier’s price from the next invoice', async () => {
    const ids = await subscribe('sp-upgrade-refund', 'PRO');
    stub.upgradeAmount = 4990;
    const up = await change('sp-upgrade-refund', 'MAX');
    expect(up.purchase).toMatchObject({ status: 'COMPLETED', amountCents: 4990 });
    const { provider_ref: invoice } = await t.app.one<{ provider_ref: string }>('SELECT provider_ref FROM purchases WHERE id = $1', [up.purchase!.id]);
    const r = await t.app.gql(RequestRefundDocument, { input: { purchaseId: up.purchase!.id } }, { sub: 'sp-upgrade-refund' });
    expect(r.data!.requestRefund.refundRequest).toMatchObject({ status: 'APPROVED', amountCents: 4990, creditsRevoked: up.purchase!.credits });
    expect(stub.callsTo('POST', '/v1/refunds').filter((c) => c.body.payment_intent === `pi_for_${invoice}`).map((c) => c.body.amount)).toEqual(['4990']);
    expect(await plan('sp-upgrade-refund')).toMatchObject({ tier: { code: 'PRO' }, status: 'ACTIVE' });
    const last = stub.calls.filter((c) => c.method === 'POST' && c.path === `/v1/subscriptions/${ids.subscription}`).pop()!;
    expect(last.body).toMatchObject({ proration_behavior: 'none', 'items[0][id]': `si_${ids.subscription}` });
    expect(stub.calls.filter((c) => c.path === '/v1/prices').pop()!.body).toMatchObject({ unit_amount: '2900', 'product_data[name]': 'Pro plan' });
    expect(stub.callsTo('DELETE', `/v1/subscriptions/${ids.subscription}`)).toHaveLength(0);
    expect(await balanceOf(t.app, 'sp-upgrade-refund')).toBe(signup + 1000);
  });

  it('grants an annual Stripe plan’s allowance every month from the sweep, without calling or charging Stripe', async () => {
    const out = await change('sp-annual', 'CREATOR', 'ANNUAL');
    expect(out.purchase).toMatchObject({ amountCents: 11520, interval: 'ANNUAL' });
    const session = out.checkoutUrl!.split('/').pop()!;
    expect(await deliver(checkoutCompleted('evt_annual_paid', { session, purchaseId: out.purchase!.id, accountId: 'sp-annual', subscription: 'sub_annual', invoice: 'in_annual' }))).toBe(200);
    const calls = stub.calls.length;
    await advanceDays(t.app, 31);
    await advanceDays(t.app, 31);
    expect(stub.calls.length).toBe(calls);
    expect(await grants('sp-annual')).toBe(3);
    expect(await balanceOf(t.app, 'sp-annual')).toBe(signup + 300);
    expect(await planPurchases('sp-annual')).toBe(1);
    expect(await t.app.rows(`SELECT amount FROM ledger_entries WHERE account_id = $1 AND kind = 'EXPIRY' ORDER BY id`, ['sp-annual'])).toEqual([{ amount: -300 }, { amount: -300 }]);
  });

  it('refuses a declined upgrade with PAYMENT_FAILED: the attempt kept as a FAILED purchase, the plan and balance unchanged', async () => {
    await subscribe('sp-declined', 'CREATOR');
    stub.declineUpgrades = true;
    const out = await change('sp-declined', 'PRO');
    expect(out.userErrors).toEqual([{ code: 'PAYMENT_FAILED', message: 'The payment failed: Your card was declined.' }]);
    expect(out.purchase).toMatchObject({ status: 'FAILED', tier: 'PRO', amountCents: 0, credits: expect.any(Number) });
    expect(await plan('sp-declined')).toMatchObject({ tier: { code: 'CREATOR' }, status: 'ACTIVE' });
    expect(await count(`purchases WHERE account_id = $1 AND kind = 'PLAN' AND status = 'COMPLETED'`, ['sp-declined'])).toBe(1);
    expect(await balanceOf(t.app, 'sp-declined')).toBe(signup + 300);
    expect(await t.app.one(`SELECT status FROM payment_intents WHERE kind = 'plan.upgrade' AND payload->>'purchaseId' = $1`, [out.purchase!.id])).toEqual({ status: 'FAILED' });
  });

  it('applies an upgrade Stripe charged when the answer to it was lost, from the proration invoice, once', async () => {
    const ids = await subscribe('sp-lost-upgrade', 'CREATOR');
    const purchaseId = randomUUID();
    const lost = invoiceEvent('evt_lost_upgrade', 'invoice.paid', {
      id: 'in_lost_upgrade', subscription: ids.subscription, reason: 'subscription_update', amountPaid: 1700, metadata: { upgradePurchaseId: purchaseId, upgradeTier: 'PRO' },
    });
    expect(await deliver(lost)).toBe(200);
    expect(await deliver({ ...lost, id: 'evt_lost_upgrade_again' })).toBe(200);
    expect((await plan('sp-lost-upgrade')).tier.code).toBe('PRO');
    const p = await t.app.one<{ status: string; tier: string; amount_cents: number; credits: number }>('SELECT status, tier, amount_cents, credits FROM purchases WHERE id = $1', [purchaseId]);
    expect(p).toMatchObject({ status: 'COMPLETED', tier: 'PRO', amount_cents: 1700 });
    expect(p.credits).toBeGreaterThanOrEqual(699); // (1000 − 300) × the month left, just after it started
    expect(await planPurchases('sp-lost-upgrade')).toBe(2);
    expect(await balanceOf(t.app, 'sp-lost-upgrade')).toBe(signup + 300 + p.credits);
  });

  it('tells Stripe to cancel at the period end (and to resume), then ends the plan at the period end without charging', async () => {
    const ids = await subscribe('sp-cancel');
    const updates = () => stub.calls.filter((c) => c.method === 'POST' && c.path === `/v1/subscriptions/${ids.subscription}`).map((c) => c.body);
    const cancel = await t.app.gql(CancelPlanAtStripeDocument, {}, { sub: 'sp-cancel' });
    expect(cancel.data!.cancelPlan).toMatchObject({ plan: { tier: { code: 'PRO' }, cancelAtPeriodEnd: true }, userErrors: [] });
    const resumed = await change('sp-cancel', 'PRO');
    expect(resumed.plan!.cancelAtPeriodEnd).toBe(false);
    await t.app.gql(CancelPlanAtStripeDocument, {}, { sub: 'sp-cancel' });
    expect(updates()).toEqual([{ cancel_at_period_end: 'true' }, { cancel_at_period_end: 'false' }, { cancel_at_period_end: 'true' }]);

    const calls = stub.calls.length;
    await advanceDays(t.app, 31);
    expect(stub.calls.length).toBe(calls);
    expect(await plan('sp-cancel')).toMatchObject({ tier: { code: 'FREE' }, status: 'CANCELED' });
    expect(await planPurchases('sp-cancel')).toBe(1);
    const notes = await count('notifications WHERE account_id = $1', ['sp-cancel']);
    expect(await deliver(event('evt_cancel_deleted', 'customer.subscription.deleted', { id: ids.subscription, object: 'subscription', status: 'canceled' }))).toBe(200);
    expect(await count('notifications WHERE account_id = $1', ['sp-cancel'])).toBe(notes);
  });

  it('schedules a lower tier at Stripe without proration and applies it when the renewal invoice is paid; an interval change is refused', async () => {
    const ids = await subscribe('sp-lower', 'MAX');
    const out = await change('sp-lower', 'CREATOR');
    expect(out.userErrors).toEqual([]);
    expect(out.plan).toMatchObject({ tier: { code: 'MAX' }, scheduledTier: { code: 'CREATOR' } });
    const update = stub.calls.filter((c) => c.method === 'POST' && c.path === `/v1/subscriptions/${ids.subscription}`).pop()!;
    expect(update.body).toMatchObject({ 'items[0][id]': `si_${ids.subscription}`, proration_behavior: 'none' });
    const price = stub.calls.filter((c) => c.path === '/v1/prices').pop()!;
    expect(price.body).toMatchObject({ unit_amount: '1200', 'recurring[interval]': 'month', 'product_data[name]': 'Creator plan' });

    const annual = await change('sp-lower', 'MAX', 'ANNUAL');
    expect(annual.userErrors.map((e) => e.code)).toEqual(['INVALID_STATE']);

    await advanceDays(t.app, 31);
    expect((await plan('sp-lower')).tier.code).toBe('MAX');
    expect(await deliver(invoiceEvent('evt_lower_renew', 'invoice.paid', { id: 'in_lower_renew', subscription: ids.subscription, reason: 'subscription_cycle', amountPaid: 1200 }))).toBe(200);
    expect(await plan('sp-lower')).toMatchObject({ tier: { code: 'CREATOR' }, status: 'ACTIVE', scheduledTier: null });
    expect(await t.app.one('SELECT tier, amount_cents, credits FROM purchases WHERE provider_ref = $1', ['in_lower_renew'])).toEqual({ tier: 'CREATOR', amount_cents: 1200, credits: 300 });
    expect(await balanceOf(t.app, 'sp-lower')).toBe(signup + 3000 + 300); // MAX's month is kept two months more after the move to CREATOR
  });

  it('keeps one open plan checkout: another plan expires the open one first, and a paid one cannot be replaced', async () => {
    const first = await change('sp-switch', 'PRO');
    const firstSession = first.checkoutUrl!.split('/').pop()!;
    const second = await change('sp-switch', 'MAX', 'ANNUAL');
    expect(second.userErrors).toEqual([]);
    expect(second.purchase).toMatchObject({ status: 'PENDING', tier: 'MAX', interval: 'ANNUAL', amountCents: 75840 });
    expect(stub.callsTo('POST', `/v1/checkout/sessions/${firstSession}/expire`)).toHaveLength(1);
    expect(await t.app.one('SELECT status, failure_reason FROM purchases WHERE id = $1', [first.purchase!.id])).toEqual({ status: 'FAILED', failure_reason: 'replaced by a newer checkout' });

    // The open one was paid meanwhile: it cannot be expired, so it is not replaced.
    const secondSession = second.checkoutUrl!.split('/').pop()!;
    stub.paidSessions.add(secondSession);
    const third = await change('sp-switch', 'CREATOR');
    expect(third.userErrors.map((e) => e.code)).toEqual(['INVALID_STATE']);
    expect(await t.app.one('SELECT status FROM purchases WHERE id = $1', [second.purchase!.id])).toEqual({ status: 'PENDING' });
    expect(await deliver(checkoutCompleted('evt_switch_paid', { session: secondSession, purchaseId: second.purchase!.id, accountId: 'sp-switch', subscription: 'sub_switch', invoice: 'in_switch' }))).toBe(200);
    expect(await plan('sp-switch')).toMatchObject({ tier: { code: 'MAX' }, interval: 'ANNUAL', status: 'ACTIVE' });
    expect(await balanceOf(t.app, 'sp-switch')).toBe(signup + 3000);
  });

  it('replaces an unpaid (PAST_DUE) plan: its subscription ends at Stripe and a new checkout opens', async () => {
    const ids = await subscribe('sp-replace', 'PRO');
    await advanceDays(t.app, 31);
    expect(await deliver(invoiceEvent('evt_replace_failed', 'invoice.payment_failed', { id: 'in_replace_1', subscription: ids.subscription, reason: 'subscription_cycle', amountPaid: 0 }))).toBe(200);
    expect((await plan('sp-replace')).status).toBe('PAST_DUE');
    const out = await change('sp-replace', 'CREATOR');
    expect(out.userErrors).toEqual([]);
    expect(out.purchase).toMatchObject({ status: 'PENDING', tier: 'CREATOR' });
    expect(stub.callsTo('DELETE', `/v1/subscriptions/${ids.subscription}`)).toHaveLength(1);
    expect(out.plan).toMatchObject({ tier: { code: 'FREE' }, status: 'CANCELED' });
    const session = out.checkoutUrl!.split('/').pop()!;
    expect(await deliver(checkoutCompleted('evt_replace_paid', { session, purchaseId: out.purchase!.id, accountId: 'sp-replace', subscription: 'sub_replace_2', invoice: 'in_replace_2' }))).toBe(200);
    expect(await plan('sp-replace')).toMatchObject({ tier: { code: 'CREATOR' }, status: 'ACTIVE' });
    expect(await balanceOf(t.app, 'sp-replace')).toBe(signup + 1000 + 300); // the ended PRO plan's month is kept until its rollover ends
  });
  it('refuses to cancel or change a Stripe plan while its renewal is in progress (period ended, invoice not yet paid); the paid invoice then renews it as it was', async () => {
    const ids = await subscribe('sp-gap', 'PRO');
    await advanceDays(t.app, 31);
    const calls = stub.calls.length;
    const cancel = await t.app.gql(CancelPlanAtStripeDocument, {}, { sub: 'sp-gap' });
    expect(cancel.data!.cancelPlan.userErrors).toEqual([{ code: 'INVALID_STATE', message: expect.stringMatching(/renewal is in progress.*try again/i) }]);
    for (const tier of ['FREE', 'CREATOR', 'MAX'] as const) {
      expect((await change('sp-gap', tier)).userErrors.map((e) => e.code)).toEqual(['INVALID_STATE']);
    }
    expect(stub.calls.length).toBe(calls);
    expect(await plan('sp-gap')).toMatchObject({ tier: { code: 'PRO' }, status: 'ACTIVE', cancelAtPeriodEnd: false, scheduledTier: null });

    expect(await deliver(invoiceEvent('evt_gap_renew', 'invoice.paid', { id: 'in_gap_renew', subscription: ids.subscription, reason: 'subscription_cycle', amountPaid: 2900 }))).toBe(200);
    expect(await plan('sp-gap')).toMatchObject({ tier: { code: 'PRO' }, status: 'ACTIVE', cancelAtPeriodEnd: false });
    expect(await t.app.one('SELECT status, tier, amount_cents FROM purchases WHERE provider_ref = $1', ['in_gap_renew'])).toEqual({ status: 'COMPLETED', tier: 'PRO', amount_cents: 2900 });
    expect(await balanceOf(t.app, 'sp-gap')).toBe(signup + 2000);
    // The new period runs: cancelling is possible again.
    expect((await t.app.gql(CancelPlanAtStripeDocument, {}, { sub: 'sp-gap' })).data!.cancelPlan.userErrors).toEqual([]);
  });

  it('refunds a renewal Stripe collects after the plan ended here (cancelled inside Stripe’s own renewal), once, found through the subscription it came from', async () => {
    const ids = await subscribe('sp-late', 'PRO');
    await advanceToBeforePeriodEnd('sp-late', 60_000);
    expect((await t.app.gql(CancelPlanAtStripeDocument, {}, { sub: 'sp-late' })).data!.cancelPlan.userErrors).toEqual([]);
    await advanceDays(t.app, 1 / 24);
    expect(await plan('sp-late')).toMatchObject({ tier: { code: 'FREE' }, status: 'CANCELED' });
    const notes = await count(`notifications WHERE account_id = $1 AND kind = 'REFUND_DECIDED'`, ['sp-late']);

    // Stripe had already started its next period when the cancel reached it: it collects that invoice an hour later.
    const late = { id: 'in_late_1', subscription: ids.subscription, reason: 'subscription_cycle', amountPaid: 2900 };
    expect(await Promise.all([1, 2, 3].map(() => deliver(invoiceEvent('evt_late_1', 'invoice.paid', late))))).toEqual([200, 200, 200]);
    expect(await deliver(invoiceEvent('evt_late_1_succeeded', 'invoice.payment_succeeded', late))).toBe(200);
    expect(refundCalls('in_late_1')).toEqual([{ payment_intent: 'pi_for_in_late_1', amount: '2900' }]);
    const p = await t.app.one<{ id: string }>(`SELECT id, status, tier, credits, amount_cents FROM purchases WHERE provider_ref = $1`, ['in_late_1']);
    expect(p).toMatchObject({ status: 'REFUNDED', tier: 'PRO', credits: 0, amount_cents: 2900 });
    expect(await t.app.one('SELECT status, amount_cents, credits_revoked, provider_ref FROM refund_requests WHERE purchase_id = $1', [p.id])).toEqual({
      status: 'APPROVED', amount_cents: 2900, credits_revoked: 0, provider_ref: expect.stringMatching(/^re_test_\d+$/),
    });
    expect(await count(`notifications WHERE account_id = $1 AND kind = 'REFUND_DECIDED'`, ['sp-late'])).toBe(notes + 1);
    expect(await plan('sp-late')).toMatchObject({ tier: { code: 'FREE' }, status: 'CANCELED' });
    expect(await grants('sp-late')).toBe(1);
    expect(await balanceOf(t.app, 'sp-late')).toBe(signup + 1000); // nothing granted for the refunded period; the first month stays until its rollover ends
  });

  it('refunds a renewal paid before our period end of a plan cancelled meanwhile, and still ends the plan at the period end', async () => {
    const ids = await subscribe('sp-early', 'PRO');
    await advanceToBeforePeriodEnd('sp-early', 2 * 3_600_000);
    expect((await t.app.gql(CancelPlanAtStripeDocument, {}, { sub: 'sp-early' })).data!.cancelPlan.userErrors).toEqual([]);
    const renewal = { id: 'in_early_1', subscription: ids.subscription, reason: 'subscription_cycle', amountPaid: 2900 };
    expect(await deliver(invoiceEvent('evt_early_1', 'invoice.paid', renewal))).toBe(200);
    expect(refundCalls('in_early_1')).toEqual([{ payment_intent: 'pi_for_in_early_1', amount: '2900' }]);
    expect(await plan('sp-early')).toMatchObject({ tier: { code: 'PRO' }, status: 'ACTIVE', cancelAtPeriodEnd: true });
    expect(await t.app.one('SELECT status, credits FROM purchases WHERE provider_ref = $1', ['in_early_1'])).toEqual({ status: 'REFUNDED', credits: 0 });
    expect(await grants('sp-early')).toBe(1);
    await advanceDays(t.app, 3 / 24);
    expect(await plan('sp-early')).toMatchObject({ tier: { code: 'FREE' }, status: 'CANCELED' });
    expect(await planPurchases('sp-early')).toBe(2);
    expect(await grants('sp-early')).toBe(1);
  });
  it('upgrades after a scheduled lower tier by the difference from the tier paid for: the item goes back to the current price (no proration) before the prorated update', async () => {
    const ids = await subscribe('sp-down-up', 'PRO');
    const updates = () => stub.calls.filter((c) => c.method === 'POST' && c.path === `/v1/subscriptions/${ids.subscription}`);
    expect((await change('sp-down-up', 'CREATOR')).plan).toMatchObject({ tier: { code: 'PRO' }, scheduledTier: { code: 'CREATOR' } });
    expect(stub.subscriptionAmount.get(ids.subscription)).toBe(1200);

    // Declined: Stripe is left as it was (the lower price from the next invoice), and so is the plan.
    stub.declineUpgrades = true;
    expect((await change('sp-down-up', 'MAX')).userErrors.map((e) => e.code)).toEqual(['PAYMENT_FAILED']);
    expect(stub.subscriptionAmount.get(ids.subscription)).toBe(1200);
    expect(await plan('sp-down-up')).toMatchObject({ tier: { code: 'PRO' }, scheduledTier: { code: 'CREATOR' } });
    stub.declineUpgrades = false;

    const before = updates().length;
    const up = await change('sp-down-up', 'MAX');
    expect(up.userErrors).toEqual([]);
    // Stripe credits the unused time at the price of the tier paid for (PRO), not the scheduled one.
    expect(up.purchase).toMatchObject({ status: 'COMPLETED', tier: 'MAX', amountCents: 7900 - 2900 });
    const [reprice, upgrade] = updates().slice(before);
    expect(reprice.body).toMatchObject({ proration_behavior: 'none' });
    expect(stub.prices.get(reprice.body['items[0][price]'])).toBe(2900);
    expect(upgrade.body).toMatchObject({ proration_behavior: 'always_invoice' });
    expect(stub.subscriptionAmount.get(ids.subscription)).toBe(7900);
    expect(await plan('sp-down-up')).toMatchObject({ tier: { code: 'MAX' }, scheduledTier: null });
  });

  it('resumes the subscription at Stripe when a plan cancelled at its period end is upgraded, in the same update', async () => {
    const ids = await subscribe('sp-cancel-up', 'CREATOR');
    expect((await t.app.gql(CancelPlanAtStripeDocument, {}, { sub: 'sp-cancel-up' })).data!.cancelPlan.userErrors).toEqual([]);
    const up = await change('sp-cancel-up', 'PRO');
    expect(up.userErrors).toEqual([]);
    expect(up.plan).toMatchObject({ tier: { code: 'PRO' }, cancelAtPeriodEnd: false });
    const upgrade = stub.calls.find((c) => c.idempotencyKey === `plan-upgrade-${up.purchase!.id}`)!;
    expect(upgrade.path).toBe(`/v1/subscriptions/${ids.subscription}`);
    expect(upgrade.body).toMatchObject({ proration_behavior: 'always_invoice', cancel_at_period_end: 'false' });
    expect(up.purchase).toMatchObject({ amountCents: 2900 - 1200 });
  });
  it.each(['500', 'close'] as const)('keeps an upgrade open when Stripe gives no answer (%s): an error now, the purchase PENDING under its intent; a retry with the key drives the same intent through Stripe’s idempotency key', async (mode) => {
    const sub = `sp-flaky-${mode}`;
    await subscribe(sub, 'CREATOR');
    stub.failUpgrades = mode;
    const failed = await t.app.gql(ChangePlanWithCheckoutDocument, { input: { tier: 'PRO', interval: 'MONTHLY', idempotencyKey: 'flaky-1' } }, { sub });
    // The library's own error after its retries, unmasked outside production.
    expect(failed.errors!.map((e) => [e.extensions!.code, e.message])).toEqual([[
      'INTERNAL_SERVER_ERROR', mode === '500' ? 'An unknown error occurred' : 'An error occurred with our connection to Stripe. Request was retried 2 times.',
    ]]);
    expect(failed.data?.changePlan ?? null).toBeNull();
    // The intent was committed before Stripe was called: the key holds it, the upgrade waits for an answer.
    expect(await count('idempotency_keys WHERE scope = $1', [sub])).toBe(1);
    expect(await t.app.rows(`SELECT status FROM purchases WHERE account_id = $1 AND kind = 'PLAN' ORDER BY created_at`, [sub])).toEqual([{ status: 'COMPLETED' }, { status: 'PENDING' }]);
    expect(await plan(sub)).toMatchObject({ tier: { code: 'CREATOR' }, status: 'ACTIVE' });
    expect(await t.app.one(`SELECT status FROM payment_intents WHERE account_id = $1 AND kind = 'plan.upgrade'`, [sub])).toEqual({ status: 'OPEN' });

    stub.failUpgrades = null;
    stub.upgradeAmount = 1700;
    const retry = await change(sub, 'PRO', 'MONTHLY', 'flaky-1');
    expect(retry.userErrors).toEqual([]);
    expect(retry.purchase).toMatchObject({ status: 'COMPLETED', tier: 'PRO', amountCents: 1700 });
    const attempts = stub.calls.filter((c) => c.body.proration_behavior === 'always_invoice' && c.path === `/v1/subscriptions/sub_${sub}`);
    expect(attempts).toHaveLength(3 + 1); // the failed call and the library's 2 retries of it (maxNetworkRetries), then the retry with the key
    expect(new Set(attempts.map((c) => c.idempotencyKey))).toEqual(new Set([`plan-upgrade-${retry.purchase!.id}`]));
    expect(await planPurchases(sub)).toBe(2);
  });
  it('renews only on a subscription_cycle invoice: a paid manual or threshold invoice of the subscription starts no period', async () => {
    const ids = await subscribe('sp-reasons', 'PRO');
    await advanceDays(t.app, 31);
    for (const reason of ['manual', 'subscription_threshold', 'subscription']) {
      expect(await deliver(invoiceEvent(`evt_reason_${reason}`, 'invoice.paid', { id: `in_reason_${reason}`, subscription: ids.subscription, reason, amountPaid: 2900 }))).toBe(200);
    }
    expect(await planPurchases('sp-reasons')).toBe(1);
    expect(await grants('sp-reasons')).toBe(1);
    expect(await count(`notifications WHERE account_id = $1 AND kind = 'PLAN_RENEWED'`, ['sp-reasons'])).toBe(0);
    expect(await deliver(invoiceEvent('evt_reason_cycle', 'invoice.paid', { id: 'in_reason_cycle', subscription: ids.subscription, reason: 'subscription_cycle', amountPaid: 2900 }))).toBe(200);
    expect(await planPurchases('sp-reasons')).toBe(2);
    expect(await grants('sp-reasons')).toBe(2);
    expect(await balanceOf(t.app, 'sp-reasons')).toBe(signup + 2000);
  });
  it('refunds at Stripe before it cancels the subscription: when Stripe fails the refund the decision stands, and the reconciler pays it back under the same key, then cancels', async () => {
    const ids = await subscribe('sp-refund-fails', 'PRO');
    stub.failRefunds = true;
    const first = await t.app.gql(RequestRefundDocument, { input: { purchaseId: ids.purchaseId } }, { sub: 'sp-refund-fails' });
    // Decided and kept: the credits are withdrawn and the plan has ended here; the money is owed.
    expect(first.data!.requestRefund.refundRequest).toMatchObject({ status: 'APPROVED', amountCents: 2900, creditsRevoked: 1000 });
    expect(await plan('sp-refund-fails')).toMatchObject({ tier: { code: 'FREE' }, status: 'CANCELED' });
    expect(stub.callsTo('DELETE', `/v1/subscriptions/${ids.subscription}`)).toHaveLength(0);
    expect(await t.app.one('SELECT provider_ref FROM refund_requests WHERE purchase_id = $1', [ids.purchaseId])).toEqual({ provider_ref: null });
    const again = await t.app.gql(RequestRefundDocument, { input: { purchaseId: ids.purchaseId } }, { sub: 'sp-refund-fails' });
    expect(again.data!.requestRefund.userErrors.map((e) => e.code)).toEqual(['REFUND_ALREADY_REQUESTED']);

    // Stripe answers again; minutes later the reconciler drives the open intents, in order.
    stub.failRefunds = false;
    await advanceDays(t.app, 10 / (24 * 60));
    const refunds = stub.callsTo('POST', '/v1/refunds').filter((c) => c.body.payment_intent === `pi_for_${ids.invoice}`);
    expect(new Set(refunds.map((c) => c.idempotencyKey)).size).toBe(1);
    expect(refunds.every((c) => c.body.amount === '2900')).toBe(true);
    expect(stub.callsTo('DELETE', `/v1/subscriptions/${ids.subscription}`)).toHaveLength(1);
    expect(await t.app.one('SELECT provider_ref IS NOT NULL AS paid FROM refund_requests WHERE purchase_id = $1', [ids.purchaseId])).toEqual({ paid: true });
    expect(await count(`payment_intents WHERE account_id = $1 AND status = 'OPEN'`, ['sp-refund-fails'])).toBe(0);
  });

  it('pays an annual plan’s approved share back under one key per request with the amount decided, even when Stripe fails it until a later month', async () => {
    const out = await change('sp-annual-refund', 'CREATOR', 'ANNUAL');
    const session = out.checkoutUrl!.split('/').pop()!;
    expect(await deliver(checkoutCompleted('evt_annual_refund', { session, purchaseId: out.purchase!.id, accountId: 'sp-annual-refund', subscription: 'sub_annual_refund', invoice: 'in_annual_refund' }))).toBe(200);
    await advanceDays(t.app, 40); // two months started
    const asked = await t.app.gql(RequestRefundDocument, { input: { purchaseId: out.purchase!.id } }, { sub: 'sp-annual-refund' });
    const req = asked.data!.requestRefund.refundRequest!;
    expect(req).toMatchObject({ status: 'PENDING_REVIEW', amountCents: 11520 - 2 * 1200 });
    stub.failRefunds = true;
    const decided = await t.app.gql(ReviewRefundRequestDocument, { input: { id: req.id, approve: true } }, ADMIN);
    expect(decided.data!.reviewRefundRequest.refundRequest).toMatchObject({ status: 'APPROVED', amountCents: 9120 });
    // A month passes with Stripe failing every attempt; then it answers again.
    await advanceDays(t.app, 31);
    stub.failRefunds = false;
    await advanceDays(t.app, 10 / (24 * 60));
    const refunds = refundCalls('in_annual_refund');
    const keys = new Set(stub.callsTo('POST', '/v1/refunds').filter((c) => c.body.payment_intent === 'pi_for_in_annual_refund').map((c) => c.idempotencyKey));
    expect(refunds.length).toBeGreaterThanOrEqual(2); // the failed attempts and the one that went through
    expect(refunds.every((b) => b.amount === '9120')).toBe(true);
    expect(keys).toEqual(new Set([`refund-${req.id}`]));
    expect(await t.app.one('SELECT provider_ref IS NOT NULL AS paid FROM refund_requests WHERE id = $1', [req.id])).toEqual({ paid: true });
    expect(await plan('sp-annual-refund')).toMatchObject({ tier: { code: 'FREE' } });
    expect(stub.callsTo('DELETE', '/v1/subscriptions/sub_annual_refund')).toHaveLength(1);
    expect(await count(`payment_intents WHERE account_id = $1 AND status = 'OPEN'`, ['sp-annual-refund'])).toBe(0);
  });

  it('holds no pool connection while Stripe answers: with 25 plans cancelling at Stripe at once, every other request is answered', async () => {
    const accounts = Array.from({ length: 25 }, (_, i) => `sp-slow-cancel-${i}`);
    const ids = await Promise.all(accounts.map((a) => subscribe(a)));
    await t.app.gql(MyPlanDocument, {}, { sub: 'sp-bystander' });
    stub.holdUpdates = true;
    const cancels = Promise.all(accounts.map((a) => t.app.gql(CancelPlanAtStripeDocument, {}, { sub: a })));
    // All 25 Stripe calls are outstanding (the pool has 20 connections): others are still served.
    for (let i = 0; stub.heldUpdates < 25 && i < 500; i++) await new Promise((r) => setTimeout(r, 20));
    expect(stub.heldUpdates).toBe(25);
    // More changes of an account already waiting on Stripe wait their turn in memory, not at Stripe.
    const again = Promise.all([1, 2, 3].map(() => t.app.gql(CancelPlanAtStripeDocument, {}, { sub: accounts[0] })));
    for (let i = 0; t.app.server.services.accountQueue.waitingFor(accounts[0]) < 3 && i < 500; i++) await new Promise((r) => setTimeout(r, 20));
    expect(t.app.server.services.accountQueue.waitingFor(accounts[0])).toBe(3);
    const others = await Promise.all(Array.from({ length: 10 }, () => t.app.gql(MyPlanDocument, {}, { sub: 'sp-bystander' })));
    expect(others.every((o) => o.errors === undefined && o.data!.me.plan.tier.code === 'FREE')).toBe(true);
    expect(stub.heldUpdates).toBe(25); // answered while no Stripe call had come back
    stub.release();
    const answers = [...(await cancels), ...(await again)];
    expect(answers.every((a) => a.errors === undefined && a.data!.cancelPlan.userErrors.length === 0)).toBe(true);
    for (const a of accounts) expect(await plan(a)).toMatchObject({ cancelAtPeriodEnd: true });
    const cancelCalls = (sub: string) => stub.calls.filter((c) => c.path === `/v1/subscriptions/${sub}` && c.body.cancel_at_period_end === 'true').length;
    expect(ids.map((x) => cancelCalls(x.subscription))).toEqual([4, ...Array(24).fill(1)]);
  });

  it('re-drives an intent left open once, however many instances reconcile at the same moment', async () => {
    const ids = await subscribe('sp-reconcile');
    stub.failRefunds = true;
    const r = await t.app.gql(RequestRefundDocument, { input: { purchaseId: ids.purchaseId } }, { sub: 'sp-reconcile' });
    expect(r.data!.requestRefund.refundRequest).toMatchObject({ status: 'APPROVED' });
    stub.failRefunds = false;
    const other = await startTestApp(stub.env({ TEST_CLOCK: '1', JOB_SWEEP_INTERVAL_MS: '3600000' }), t.app.databaseUrl);
    try {
      // The intent is old enough now; three reconcilers on two instances race for it.
      await t.app.server.services.testClock.advance(10 * 60_000, async () => undefined);
      other.server.services.clock.setOffset(t.app.server.services.clock.offset);
      const before = refundCalls(ids.invoice).length;
      const driven = await Promise.all([t.app.server.services.intents.reconcile(), other.server.services.intents.reconcile(), t.app.server.services.intents.reconcile()]);
      expect(driven.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);
      expect(refundCalls(ids.invoice).length - before).toBe(1);
      expect(stub.callsTo('DELETE', `/v1/subscriptions/${ids.subscription}`)).toHaveLength(1);
      expect(await count(`payment_intents WHERE account_id = $1 AND status = 'OPEN'`, ['sp-reconcile'])).toBe(0);
    } finally {
      await other.stop();
    }
  });

  it('refunds a plan whose checkout named no invoice through the session’s invoice, never sending the session id as a payment intent', async () => {
    const out = await change('sp-no-invoice', 'PRO');
    const session = out.checkoutUrl!.split('/').pop()!;
    stub.sessionInvoices.set(session, 'in_of_session');
    expect(await deliver(checkoutCompleted('evt_no_invoice', { session, purchaseId: out.purchase!.id, accountId: 'sp-no-invoice', subscription: 'sub_no_invoice', invoice: null }))).toBe(200);
    expect(await plan('sp-no-invoice')).toMatchObject({ tier: { code: 'PRO' }, status: 'ACTIVE' });
    const r = await t.app.gql(RequestRefundDocument, { input: { purchaseId: out.purchase!.id } }, { sub: 'sp-no-invoice' });
    expect(r.data!.requestRefund.refundRequest).toMatchObject({ status: 'APPROVED', amountCents: 2900 });
    expect(stub.callsTo('POST', '/v1/refunds').filter((c) => c.body.payment_intent === session)).toEqual([]);
    expect(refundCalls('in_of_session')).toEqual([{ payment_intent: 'pi_for_in_of_session', amount: '2900' }]);
  });
  it('answers 500 (so Stripe retries) when the database fails while a plan checkout completes, instead of reporting it applied', async () => {
    const out = await change('sp-db-error', 'PRO');
    const session = out.checkoutUrl!.split('/').pop()!;
    // An account id PostgreSQL cannot read (a NUL byte) makes the account lookup fail in the database.
    const broken = checkoutCompleted('evt_db_error', { session, purchaseId: out.purchase!.id, accountId: 'sp-db-error\u0000', subscription: 'sub_db_error', invoice: 'in_db_error' });
    expect(await deliver(broken)).toBe(500);
    expect(await count(`webhook_events WHERE event_id = 'evt_db_error'`, [])).toBe(0);
    // An account that does not exist is an answer, not a fault: recorded, nothing applied.
    const unknown = checkoutCompleted('evt_no_account', { session, purchaseId: out.purchase!.id, accountId: 'sp-nobody', subscription: 'sub_nobody', invoice: 'in_nobody' });
    expect(await deliver(unknown)).toBe(200);
    expect(await count(`webhook_events WHERE event_id = 'evt_no_account'`, [])).toBe(1);
    expect(await t.app.one('SELECT status FROM purchases WHERE id = $1', [out.purchase!.id])).toEqual({ status: 'PENDING' });
  });
  it('reads the catalog before opening a transaction in the plan webhooks and the sweep', async () => {
    const services = t.app.server.services;
    let open = 0;
    const inside: string[] = [];
    const createRunner = services.db.createQueryRunner.bind(services.db);
    const runners = jest.spyOn(services.db, 'createQueryRunner').mockImplementation((...args) => {
      const r = createRunner(...args);
      const [start, commit, rollback] = [r.startTransaction.bind(r), r.commitTransaction.bind(r), r.rollbackTransaction.bind(r)];
      r.startTransaction = async (level) => { await start(level); open++; };
      r.commitTransaction = async () => { open--; await commit(); };
      r.rollbackTransaction = async () => { open--; await rollback(); };
      return r;
    });
    const watch = <K extends 'tiers' | 'tier'>(name: K) => {
      const real = (services.catalog[name] as (...a: unknown[]) => Promise<unknown>).bind(services.catalog);
      return jest.spyOn(services.catalog, name).mockImplementation((async (...a: unknown[]) => {
        if (open > 0) inside.push(new Error(`catalog.${name}() inside a transaction`).stack!);
        return real(...a);
      }) as never);
    };
    const spies = [watch('tiers'), watch('tier')];
    try {
      const ids = await subscribe('sp-catalog', 'CREATOR');
      const cancelled = await subscribe('sp-catalog-cancelled', 'PRO');
      expect(await deliver(invoiceEvent('evt_catalog_up', 'invoice.paid', {
        id: 'in_catalog_up', subscription: ids.subscription, reason: 'subscription_update', amountPaid: 1700, metadata: { upgradePurchaseId: randomUUID(), upgradeTier: 'PRO' },
      }))).toBe(200);
      await t.app.gql(CancelPlanAtStripeDocument, {}, { sub: 'sp-catalog-cancelled' });
      await advanceDays(t.app, 31); // the sweep ends the cancelled plan
      expect(await deliver(invoiceEvent('evt_catalog_renew', 'invoice.paid', { id: 'in_catalog_renew', subscription: ids.subscription, reason: 'subscription_cycle', amountPaid: 2900 }))).toBe(200);
      expect(await deliver(event('evt_catalog_deleted', 'customer.subscription.deleted', { id: ids.subscription, object: 'subscription', status: 'canceled' }))).toBe(200);
      expect(await deliver(invoiceEvent('evt_catalog_late', 'invoice.paid', { id: 'in_catalog_late', subscription: cancelled.subscription, reason: 'subscription_cycle', amountPaid: 2900 }))).toBe(200);
      expect(await plan('sp-catalog')).toMatchObject({ tier: { code: 'FREE' } });
      expect(await plan('sp-catalog-cancelled')).toMatchObject({ tier: { code: 'FREE' } });
      expect(await t.app.one('SELECT status FROM purchases WHERE provider_ref = $1', ['in_catalog_renew'])).toEqual({ status: 'COMPLETED' });
      expect(await t.app.one('SELECT status, tier FROM purchases WHERE provider_ref = $1', ['in_catalog_late'])).toEqual({ status: 'REFUNDED', tier: 'PRO' });
    } finally {
      runners.mockRestore();
      for (const s of spies) s.mockRestore();
    }
    expect(inside.filter((stack) => /PlanService|stripeWebhook/.test(stack))).toEqual([]);
  });
});
