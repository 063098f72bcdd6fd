import { MeDocument, PurchaseCreditPackDocument, RequestRefundDocument } from './graphql/generated';
import { balanceOf, signupCredits } from './helpers/accounts';
import { deliverEvent, packCheckoutCompleted, useStripeApp } from './helpers/stripe-stub';

const t = useStripeApp();
const { stub } = t;
const deliver = (event: object, opts?: { secret?: string }) => deliverEvent(t.app, event, opts);
let signup: number; // the catalog's sign-up credits: every account starts with them

beforeAll(async () => {
  signup = await signupCredits(t.app);
});

async function buy(sub: string) {
  const r = await t.app.gql(PurchaseCreditPackDocument, { input: { packCode: 'STARTER' } }, { sub });
  return r.data!.purchaseCreditPack;
}

describe('the stripe provider', () => {
  it('sells a pack through a Checkout Session: PENDING until the signed webhook says paid', async () => {
    const out = await buy('stripe-buyer');
    expect(out.userErrors).toEqual([]);
    expect(out.purchase!.status).toBe('PENDING');
    expect(out.checkoutUrl).toMatch(/^https:\/\/checkout\.stripe\.com\/c\/pay\/cs_test_\d+$/);
    expect(out.balance).toEqual({ available: signup });
    const call = stub.calls.find((c) => c.idempotencyKey === `purchase-${out.purchase!.id}`)!;
    expect(call.path).toBe('/v1/checkout/sessions');
    expect(call.body['line_items[0][price_data][unit_amount]']).toBe('500');

    expect(await deliver(packCheckoutCompleted('evt_paid_1', out.purchase!.id, 'stripe-buyer', 'pi_1'))).toBe(200);
    expect(await balanceOf(t.app, 'stripe-buyer')).toBe(signup + 50);
    const row = await t.app.audit.query('SELECT status, provider_ref FROM purchases WHERE id = $1', [out.purchase!.id]);
    expect(row.rows[0]).toEqual({ status: 'COMPLETED', provider_ref: 'pi_1' });
  });

  it('applies a redelivered event once, and refuses a bad signature with 400', async () => {
    const out = await buy('redelivered');
    const event = packCheckoutCompleted('evt_paid_2', out.purchase!.id, 'redelivered', 'pi_2');
    const statuses = await Promise.all(Array.from({ length: 5 }, () => deliver(event)));
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    expect(await deliver(event)).toBe(200);
    expect(await balanceOf(t.app, 'redelivered')).toBe(signup + 50);
    const grants = await t.app.audit.query(`SELECT count(*)::int AS n FROM ledger_entries WHERE account_id = 'redelivered' AND purchase_id IS NOT NULL`);
    expect(grants.rows[0].n).toBe(1);

    const other = await buy('forger');
    expect(await deliver(packCheckoutCompleted('evt_forged', other.purchase!.id, 'forger', 'pi_3'), { secret: 'whsec_wrong' })).toBe(400);
    expect(await balanceOf(t.app, 'forger')).toBe(signup);
    const events = await t.app.audit.query(`SELECT count(*)::int AS n FROM webhook_events WHERE event_id = 'evt_forged'`);
    expect(events.rows[0].n).toBe(0);
  });

  it('completes a purchase that was marked FAILED here when Stripe says it was paid', async () => {
    const out = await buy('paid-late');
    await t.app.audit.query(`UPDATE purchases SET status = 'FAILED', failure_reason = 'gave up' WHERE id = $1`, [out.purchase!.id]);
    expect(await deliver(packCheckoutCompleted('evt_paid_late', out.purchase!.id, 'paid-late', 'pi_late'))).toBe(200);
    const row = await t.app.audit.query('SELECT status, failure_reason FROM purchases WHERE id = $1', [out.purchase!.id]);
    expect(row.rows[0]).toEqual({ status: 'COMPLETED', failure_reason: null });
    expect(await balanceOf(t.app, 'paid-late')).toBe(signup + 50);
  });

  it('refunds through Stripe and records the confirmation webhook', async () => {
    const out = await buy('stripe-refunder');
    await deliver(packCheckoutCompleted('evt_paid_4', out.purchase!.id, 'stripe-refunder', 'pi_4'));
    const r = await t.app.gql(RequestRefundDocument, { input: { purchaseId: out.purchase!.id } }, { sub: 'stripe-refunder' });
    expect(r.data!.requestRefund.refundRequest).toMatchObject({ status: 'APPROVED', amountCents: 500, creditsRevoked: 50 });
    const refundCall = stub.calls.find((c) => c.path === '/v1/refunds')!;
    expect(refundCall.body).toEqual({ payment_intent: 'pi_4', amount: '500' });
    expect(await deliver({ id: 'evt_refunded_4', object: 'event', type: 'charge.refunded', data: { object: { id: 'ch_4', object: 'charge', payment_intent: 'pi_4' } } })).toBe(200);
    const confirmed = await t.app.audit.query('SELECT provider_confirmed_at IS NOT NULL AS ok FROM refund_requests WHERE purchase_id = $1', [out.purchase!.id]);
    expect(confirmed.rows[0].ok).toBe(true);
    expect((await t.app.gql(MeDocument, {}, { sub: 'stripe-refunder' })).data!.me.balance.available).toBe(signup);
  });
});
