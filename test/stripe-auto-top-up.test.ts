/**
 * Auto top-up with PAYMENT_PROVIDER=stripe (the real `stripe` library against the stub): the
 * first Checkout saves the card (setup_future_usage off_session, on a customer), and a fall below
 * the level charges it off-session through a PaymentIntent keyed by the purchase; a card that
 * needs its holder fails the attempt, counted and told.
 */
import { MyAutoTopUpDocument, PurchaseCreditPackDocument, SetAutoTopUpDocument } from './graphql/generated';
import { adjustCredits, balanceOf, openAccount } from './helpers/accounts';
import { notesOf } from './helpers/notices';
import { deliverEvent, offSessionPaymentEnded, packCheckoutCompleted, useStripeApp, type StripeStub } from './helpers/stripe-stub';
import { eventually } from './helpers/test-app';

const t = useStripeApp();
const { stub } = t;

const NEEDS_AUTHENTICATION = 'your bank asks you to confirm this payment yourself (authentication required): buy a pack by hand once to confirm your card';

/** A pack bought by hand at Checkout, paid by `customer` (whose card the session saves). */
async function buyByHand(sub: string, customer: string, event: string) {
  const out = (await t.app.gql(PurchaseCreditPackDocument, { input: { packCode: 'STARTER' } }, { sub })).data!.purchaseCreditPack;
  expect(await deliverEvent(t.app, packCheckoutCompleted(event, out.purchase!.id, sub, `pi_${event}`, customer))).toBe(200);
  return out.purchase!.id;
}

async function setUp(sub: string) {
  const r = await t.app.gql(SetAutoTopUpDocument, { input: { packCode: 'CREATOR', belowCredits: 100, maxPerMonth: 5 } }, { sub });
  expect(r.data!.setAutoTopUp.userErrors).toEqual([]);
}

/** An account with 150 credits, a pack bought by hand (its card saved on `cus_<name>`), auto top-up on, and Stripe answering `offSession`; then the balance falls to `to`. */
async function fallWithSavedCard(sub: string, name: string, offSession: StripeStub['offSession'], to: number) {
  await openAccount(t.app, sub, { balance: 150 });
  await buyByHand(sub, `cus_${name}`, `evt_${name}_first`);
  stub.savedCards.set(`cus_${name}`, `pm_card_${name}`);
  await setUp(sub);
  stub.offSession = offSession;
  await adjustCredits(t.app, sub, to - (await balanceOf(t.app, sub)));
}

async function automatic(sub: string) {
  return t.app.rows<{ id: string; status: string; provider_ref: string | null; failure_reason: string | null }>(
    'SELECT id, status, provider_ref, failure_reason FROM purchases WHERE account_id = $1 AND automatic ORDER BY created_at, id', [sub]);
}

async function settled(sub: string): Promise<void> {
  await eventually(async () => (await t.app.one<{ busy: boolean }>('SELECT requested_at IS NOT NULL OR purchase_id IS NOT NULL AS busy FROM auto_top_ups WHERE account_id = $1', [sub]))?.busy === false);
}

describe('auto top-up with stripe', () => {
  it('saves the card at the first Checkout and charges it off-session, keyed by the purchase, when the balance falls below the level', async () => {
    await openAccount(t.app, 'stripe-auto', { balance: 150 });
    const first = await buyByHand('stripe-auto', 'cus_auto', 'evt_auto_first');
    const checkout = stub.calls.find((c) => c.idempotencyKey === `purchase-${first}`)!;
    expect(checkout.path).toBe('/v1/checkout/sessions');
    expect(checkout.body['payment_intent_data[setup_future_usage]']).toBe('off_session');
    expect(checkout.body.customer_creation).toBe('always');
    expect(await t.app.one('SELECT customer_ref FROM accounts WHERE id = $1', ['stripe-auto'])).toEqual({ customer_ref: 'cus_auto' });

    // A second Checkout is on that customer, not a new one.
    const second = (await t.app.gql(PurchaseCreditPackDocument, { input: { packCode: 'STARTER' } }, { sub: 'stripe-auto' })).data!.purchaseCreditPack.purchase!.id;
    const again = stub.calls.find((c) => c.idempotencyKey === `purchase-${second}`)!;
    expect([again.body.customer, again.body.customer_creation]).toEqual(['cus_auto', undefined]);

    stub.savedCards.set('cus_auto', 'pm_card_auto');
    await setUp('stripe-auto');
    const before = await balanceOf(t.app, 'stripe-auto');
    await adjustCredits(t.app, 'stripe-auto', 99 - before); // 99: below 100
    await eventually(async () => (await balanceOf(t.app, 'stripe-auto')) === 299);
    await settled('stripe-auto');
    const [bought] = await automatic('stripe-auto');
    const charges = stub.callsTo('POST', '/v1/payment_intents');
    expect(charges).toHaveLength(1);
    expect(charges[0].idempotencyKey).toBe(`purchase-${bought.id}`);
    expect(charges[0].body).toMatchObject({
      amount: '1800', currency: 'usd', customer: 'cus_auto', payment_method: 'pm_card_auto', off_session: 'true', confirm: 'true',
      'metadata[purchaseId]': bought.id, 'metadata[accountId]': 'stripe-auto', 'metadata[automatic]': 'true',
    });
    expect(bought).toMatchObject({ status: 'COMPLETED', provider_ref: expect.stringMatching(/^pi_test_\d+$/) });
    expect(await notesOf(t.app, 'stripe-auto', ['AUTO_TOP_UP_COMPLETED'])).toEqual([
      { kind: 'AUTO_TOP_UP_COMPLETED', message: 'Auto top-up: 200 credits from the CREATOR pack were added for 18.00 USD, charged to your saved payment method; they never expire.' },
    ]);
  });

  it('fails the attempt when the bank asks for the cardholder, counts it and tells the user', async () => {
    await fallWithSavedCard('stripe-3ds', '3ds', 'authentication_required', 90);
    await settled('stripe-3ds');
    expect((await automatic('stripe-3ds')).map((p) => [p.status, p.failure_reason])).toEqual([['FAILED', NEEDS_AUTHENTICATION]]);
    expect(await balanceOf(t.app, 'stripe-3ds')).toBe(90);
    const me = (await t.app.gql(MyAutoTopUpDocument, {}, { sub: 'stripe-3ds' })).data!.me;
    expect(me.autoTopUp).toMatchObject({ enabled: true, failedAttempts: 1, purchasesThisMonth: 0 });
    expect(await notesOf(t.app, 'stripe-3ds', ['AUTO_TOP_UP_FAILED'])).toEqual([
      { kind: 'AUTO_TOP_UP_FAILED', message: `Auto top-up could not buy the CREATOR pack: ${NEEDS_AUTHENTICATION}. It tries again the next time your balance falls below your level (failure 1 of 3 before it turns itself off).` },
    ]);
  });

  it('fails without calling Stripe when no card was saved yet', async () => {
    await openAccount(t.app, 'stripe-nocard', { balance: 150 });
    await setUp('stripe-nocard');
    const calls = stub.callsTo('POST', '/v1/payment_intents').length;
    await adjustCredits(t.app, 'stripe-nocard', -60);
    await settled('stripe-nocard');
    expect((await automatic('stripe-nocard')).map((p) => [p.status, p.failure_reason])).toEqual([
      ['FAILED', 'no saved card: buy a credit pack by hand once, and the card you pay with is saved for auto top-up'],
    ]);
    expect(stub.callsTo('POST', '/v1/payment_intents').length).toBe(calls);
  });

  it('an off-session payment still processing stays in flight until its webhook, then completes once', async () => {
    await fallWithSavedCard('stripe-slow', 'slow', 'processing', 50);
    await eventually(async () => (await automatic('stripe-slow'))[0]?.provider_ref != null);
    const [pending] = await automatic('stripe-slow');
    expect(pending.status).toBe('PENDING');
    await adjustCredits(t.app, 'stripe-slow', -10); // a fall while one is in flight asks for nothing more
    expect(await t.app.one('SELECT requested_at, purchase_id FROM auto_top_ups WHERE account_id = $1', ['stripe-slow'])).toEqual({ requested_at: null, purchase_id: pending.id });

    const paid = offSessionPaymentEnded('evt_slow_paid', pending.provider_ref!, pending.id, 'stripe-slow', true);
    expect(await deliverEvent(t.app, paid)).toBe(200);
    expect(await deliverEvent(t.app, paid)).toBe(200);
    expect(await balanceOf(t.app, 'stripe-slow')).toBe(240);
    expect((await automatic('stripe-slow')).map((p) => p.status)).toEqual(['COMPLETED']);
    await settled('stripe-slow');
  });
});
