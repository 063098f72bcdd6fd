import http from 'node:http';
import Stripe from 'stripe';
import { MeDocument, PurchaseCreditPackDocument, RequestRefundDocument } from './graphql/generated';
import { startTestApp, type TestApp } from './helpers/test-app';

const WEBHOOK_SECRET = 'whsec_test_0123456789';

/** A stand-in for Stripe's API: records what the library sends, answers like Stripe would. */
class StripeStub {
  readonly calls: { path: string; idempotencyKey?: string; body: string }[] = [];
  private server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      this.calls.push({ path: req.url!, idempotencyKey: req.headers['idempotency-key'] as string | undefined, body });
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v1/checkout/sessions') {
        const n = this.calls.length;
        res.end(JSON.stringify({ id: `cs_test_${n}`, object: 'checkout.session', url: `https://checkout.stripe.com/c/pay/cs_test_${n}` }));
      } else if (req.url === '/v1/refunds') {
        res.end(JSON.stringify({ id: `re_test_${this.calls.length}`, object: 'refund', status: 'succeeded' }));
      } else {
        res.statusCode = 404;
        res.end(JSON.stringify({ error: { message: 'not stubbed' } }));
      }
    });
  });
  port = 0;

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as { port: number }).port;
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

let app: TestApp;
const stub = new StripeStub();
const signer = new Stripe('sk_test_signer');

beforeAll(async () => {
  await stub.start();
  app = await startTestApp({
    PAYMENT_PROVIDER: 'stripe',
    STRIPE_SECRET_KEY: 'sk_test_credits',
    STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    STRIPE_API_BASE: `http://127.0.0.1:${stub.port}`,
  });
});

afterEach(async () => {
  await app.checkInvariants();
});

afterAll(async () => {
  await app.stop();
  await stub.stop();
});

function sessionCompleted(eventId: string, purchaseId: string, accountId: string, intent: string) {
  return {
    id: eventId,
    object: 'event',
    type: 'checkout.session.completed',
    data: { object: { id: `cs_${purchaseId}`, object: 'checkout.session', client_reference_id: purchaseId, payment_status: 'paid', payment_intent: intent, metadata: { purchaseId, accountId } } },
  };
}

async function deliver(event: object, secret = WEBHOOK_SECRET): Promise<number> {
  const payload = JSON.stringify(event);
  const header = signer.webhooks.generateTestHeaderString({ payload, secret });
  const res = await fetch(app.url.replace('/graphql', '/webhooks/stripe'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': header },
    body: payload,
  });
  return res.status;
}

async function balance(sub: string): Promise<number> {
  return (await app.audit.query('SELECT available FROM accounts WHERE id = $1', [sub])).rows[0].available;
}

async function buy(sub: string) {
  const r = await app.gql(PurchaseCreditPackDocument, { input: { packCode: 'STARTER' } }, { sub });
  return r.data!.purchaseCreditPack;
}

describe('the stripe provider', () => {
  it('sells a pack through a Checkout Session: PENDING until the signed webhook says paid', async () => {
    const out = await buy('stripe-buyer');
    expect(out.userErrors).toEqual([]);
    expect(out.purchase!.status).toBe('PENDING');
    expect(out.checkoutUrl).toMatch(/^https:\/\/checkout\.stripe\.com\/c\/pay\/cs_test_\d+$/);
    expect(out.balance).toEqual({ available: 25 });
    const call = stub.calls.find((c) => c.idempotencyKey === `purchase-${out.purchase!.id}`)!;
    expect(call.path).toBe('/v1/checkout/sessions');
    expect(decodeURIComponent(call.body)).toContain('line_items[0][price_data][unit_amount]=500');

    expect(await deliver(sessionCompleted('evt_paid_1', out.purchase!.id, 'stripe-buyer', 'pi_1'))).toBe(200);
    expect(await balance('stripe-buyer')).toBe(75);
    const row = await app.audit.query('SELECT status, provider_ref FROM purchases WHERE id = $1', [out.purchase!.id]);
    expect(row.rows[0]).toEqual({ status: 'COMPLETED', provider_ref: 'pi_1' });
  });

  it('applies a redelivered event once, and refuses a bad signature with 400', async () => {
    const out = await buy('redelivered');
    const event = sessionCompleted('evt_paid_2', out.purchase!.id, 'redelivered', 'pi_2');
    const statuses = await Promise.all(Array.from({ length: 5 }, () => deliver(event)));
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    expect(await deliver(event)).toBe(200);
    expect(await balance('redelivered')).toBe(75);
    const grants = await app.audit.query(`SELECT count(*)::int AS n FROM ledger_entries WHERE account_id = 'redelivered' AND purchase_id IS NOT NULL`);
    expect(grants.rows[0].n).toBe(1);

    const other = await buy('forger');
    expect(await deliver(sessionCompleted('evt_forged', other.purchase!.id, 'forger', 'pi_3'), 'whsec_wrong')).toBe(400);
    expect(await balance('forger')).toBe(25);
    const events = await app.audit.query(`SELECT count(*)::int AS n FROM webhook_events WHERE event_id = 'evt_forged'`);
    expect(events.rows[0].n).toBe(0);
  });

  it('completes a purchase that was marked FAILED here when Stripe says it was paid', async () => {
    const out = await buy('paid-late');
    await app.audit.query(`UPDATE purchases SET status = 'FAILED', failure_reason = 'gave up' WHERE id = $1`, [out.purchase!.id]);
    expect(await deliver(sessionCompleted('evt_paid_late', out.purchase!.id, 'paid-late', 'pi_late'))).toBe(200);
    const row = await app.audit.query('SELECT status, failure_reason FROM purchases WHERE id = $1', [out.purchase!.id]);
    expect(row.rows[0]).toEqual({ status: 'COMPLETED', failure_reason: null });
    expect(await balance('paid-late')).toBe(75);
  });

  it('refunds through Stripe and records the confirmation webhook', async () => {
    const out = await buy('stripe-refunder');
    await deliver(sessionCompleted('evt_paid_4', out.purchase!.id, 'stripe-refunder', 'pi_4'));
    const r = await app.gql(RequestRefundDocument, { input: { purchaseId: out.purchase!.id } }, { sub: 'stripe-refunder' });
    expect(r.data!.requestRefund.refundRequest).toMatchObject({ status: 'APPROVED', amountCents: 500, creditsRevoked: 50 });
    const refundCall = stub.calls.find((c) => c.path === '/v1/refunds')!;
    expect(decodeURIComponent(refundCall.body)).toContain('payment_intent=pi_4');
    expect(await deliver({ id: 'evt_refunded_4', object: 'event', type: 'charge.refunded', data: { object: { id: 'ch_4', object: 'charge', payment_intent: 'pi_4' } } })).toBe(200);
    const confirmed = await app.audit.query('SELECT provider_confirmed_at IS NOT NULL AS ok FROM refund_requests WHERE purchase_id = $1', [out.purchase!.id]);
    expect(confirmed.rows[0].ok).toBe(true);
    expect((await app.gql(MeDocument, {}, { sub: 'stripe-refunder' })).data!.me.balance.available).toBe(25);
  });
});
