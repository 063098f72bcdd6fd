/**
 * Stripe, imitated for the tests of PAYMENT_PROVIDER=stripe: a local HTTP server that answers the
 * real `stripe` library (pointed at it with STRIPE_API_BASE) like Stripe's API would and records
 * every request, and webhook events signed with the library's own test-header helper. Nothing
 * reaches the network.
 */
import http from 'node:http';
import Stripe from 'stripe';
import { startTestApp, type TestApp } from './test-app';

export const STRIPE_WEBHOOK_SECRET = 'whsec_test_0123456789';

export interface StripeCall {
  method: string;
  path: string;
  idempotencyKey?: string;
  /** The form fields the library sent, by their bracketed names (`line_items[0][price_data][unit_amount]`). */
  body: Record<string, string>;
}

/** The parts of Stripe's API that packs, plans and refunds use; records every request. */
export class StripeStub {
  readonly calls: StripeCall[] = [];
  /** Checkout sessions the tests reported as paid (they can no longer be expired). */
  readonly paidSessions = new Set<string>();
  /** The invoice a checkout session shows when retrieved. */
  readonly sessionInvoices = new Map<string, string>();
  /** What an upgrade's proration invoice collects; 0: Stripe's proration for a whole period left (new price − the item's price). */
  upgradeAmount = 0;
  declineUpgrades = false;
  /** Upgrades (prorated updates) answered with a 500 or a closed connection, while set. */
  failUpgrades: '500' | 'close' | null = null;
  /** Refunds answered with a 500, while set. */
  failRefunds = false;
  /** While set, subscription updates get no answer until release() (a slow Stripe). */
  holdUpdates = false;
  /** Saved cards by customer (GET /v1/payment_methods lists them). */
  readonly savedCards = new Map<string, string>();
  /** How an off-session PaymentIntent ends: paid, refused as needing the cardholder, declined, or still processing. */
  offSession: 'succeeded' | 'authentication_required' | 'declined' | 'processing' = 'succeeded';
  /** Unit amounts of the prices created, and the price each subscription's item is on. */
  readonly prices = new Map<string, number>();
  readonly subscriptionAmount = new Map<string, number>();
  port = 0;
  private held: (() => void)[] = [];
  private n = 0;
  private server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const url = new URL(req.url!, 'http://stub');
      const body = Object.fromEntries(new URLSearchParams(raw));
      this.calls.push({ method: req.method!, path: url.pathname, idempotencyKey: req.headers['idempotency-key'] as string | undefined, body });
      const upgrade = body.proration_behavior === 'always_invoice';
      if (upgrade && this.failUpgrades === 'close') {
        req.socket.destroy();
        return;
      }
      if ((upgrade && this.failUpgrades === '500') || (this.failRefunds && url.pathname === '/v1/refunds')) {
        res.statusCode = 500;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ error: { type: 'api_error', message: 'An unknown error occurred' } }));
        return;
      }
      const [status, answer] = this.answer(req.method!, url.pathname, body, url.searchParams);
      const send = () => {
        res.statusCode = status;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(answer));
      };
      if (this.holdUpdates && req.method === 'POST' && url.pathname.startsWith('/v1/subscriptions/')) this.held.push(send);
      else send();
    });
  });

  /** The environment that points a test app's stripe provider at this stub. */
  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      PAYMENT_PROVIDER: 'stripe',
      STRIPE_SECRET_KEY: 'sk_test_credits',
      STRIPE_WEBHOOK_SECRET,
      STRIPE_API_BASE: `http://127.0.0.1:${this.port}`,
      ...extra,
    };
  }

  callsTo(method: string, path: string): StripeCall[] {
    return this.calls.filter((c) => c.method === method && c.path === path);
  }

  /** Updates received and not yet answered. */
  get heldUpdates(): number {
    return this.held.length;
  }

  release(): void {
    this.holdUpdates = false;
    for (const send of this.held.splice(0)) send();
  }

  /** Stripe answering normally again (what a test switched on ends with it); the calls are kept. */
  reset(): void {
    this.upgradeAmount = 0;
    this.declineUpgrades = false;
    this.failUpgrades = null;
    this.failRefunds = false;
    this.offSession = 'succeeded';
    this.release();
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as { port: number }).port;
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }

  private answer(method: string, path: string, body: Record<string, string>, query: URLSearchParams): [number, unknown] {
    const n = ++this.n;
    let m: RegExpMatchArray | null;
    if (method === 'POST' && path === '/v1/checkout/sessions') {
      return [200, { id: `cs_test_${n}`, object: 'checkout.session', status: 'open', url: `https://checkout.stripe.com/c/pay/cs_test_${n}` }];
    }
    if ((m = path.match(/^\/v1\/checkout\/sessions\/([^/]+)\/expire$/))) {
      if (this.paidSessions.has(m[1])) return [400, { error: { type: 'invalid_request_error', message: 'Only Checkout Sessions with a status of open can be expired.' } }];
      return [200, { id: m[1], object: 'checkout.session', status: 'expired' }];
    }
    if ((m = path.match(/^\/v1\/checkout\/sessions\/([^/]+)$/))) {
      return [200, { id: m[1], object: 'checkout.session', status: this.paidSessions.has(m[1]) ? 'complete' : 'expired', invoice: this.sessionInvoices.get(m[1]) ?? null }];
    }
    if (method === 'POST' && path === '/v1/prices') {
      this.prices.set(`price_${n}`, Number(body.unit_amount));
      return [200, { id: `price_${n}`, object: 'price', unit_amount: Number(body.unit_amount) }];
    }
    if ((m = path.match(/^\/v1\/subscriptions\/([^/]+)$/))) {
      const sub = { id: m[1], object: 'subscription', status: 'active', items: { object: 'list', data: [{ id: `si_${m[1]}`, object: 'subscription_item' }] } };
      if (method === 'GET') return [200, sub];
      if (method === 'DELETE') return [200, { ...sub, status: 'canceled' }];
      const from = this.subscriptionAmount.get(m[1]) ?? 0;
      const to = body['items[0][price]'] ? this.prices.get(body['items[0][price]']) : undefined;
      if (body.proration_behavior === 'always_invoice') {
        if (this.declineUpgrades) return [402, { error: { type: 'card_error', code: 'card_declined', message: 'Your card was declined.' } }];
        if (to !== undefined) this.subscriptionAmount.set(m[1], to);
        const amount = this.upgradeAmount || (to ?? from) - from;
        return [200, { ...sub, latest_invoice: { id: `in_upgrade_${n}`, object: 'invoice', status: 'paid', amount_paid: amount } }];
      }
      if (to !== undefined) this.subscriptionAmount.set(m[1], to);
      return [200, sub];
    }
    if ((m = path.match(/^\/v1\/invoices\/([^/]+)$/))) {
      return [200, { id: m[1], object: 'invoice', payments: { object: 'list', data: [{ status: 'paid', payment: { type: 'payment_intent', payment_intent: `pi_for_${m[1]}` } }] } }];
    }
    if (method === 'GET' && path === '/v1/payment_methods') {
      const card = this.savedCards.get(query.get('customer') ?? '');
      return [200, { object: 'list', has_more: false, data: card ? [{ id: card, object: 'payment_method', type: 'card', customer: query.get('customer') }] : [] }];
    }
    if (method === 'POST' && path === '/v1/payment_intents') {
      if (this.offSession === 'authentication_required') {
        return [402, { error: { type: 'card_error', code: 'authentication_required', message: 'This payment requires authentication.', payment_intent: { id: `pi_test_${n}`, status: 'requires_payment_method' } } }];
      }
      if (this.offSession === 'declined') return [402, { error: { type: 'card_error', code: 'card_declined', message: 'Your card was declined.' } }];
      return [200, { id: `pi_test_${n}`, object: 'payment_intent', status: this.offSession, amount: Number(body.amount), metadata: {} }];
    }
    if (method === 'POST' && path === '/v1/refunds') return [200, { id: `re_test_${n}`, object: 'refund', status: 'succeeded' }];
    return [404, { error: { type: 'invalid_request_error', message: `not stubbed: ${method} ${path}` } }];
  }
}

/**
 * One server on PAYMENT_PROVIDER=stripe talking to a StripeStub, per test file: after every test
 * the stub answers normally again and the ledger invariants are checked.
 */
export function useStripeApp(env: Record<string, string> = {}): { readonly app: TestApp; readonly stub: StripeStub } {
  const holder = { stub: new StripeStub() } as { app: TestApp; stub: StripeStub };
  beforeAll(async () => {
    await holder.stub.start();
    holder.app = await startTestApp(holder.stub.env(env));
  });
  afterEach(async () => {
    holder.stub.reset();
    await holder.app?.checkInvariants();
  });
  afterAll(async () => {
    await holder.app?.stop();
    await holder.stub.stop();
  });
  return holder;
}

// ---- events, signed as Stripe signs them ----

const signer = new Stripe('sk_test_signer');

export function stripeEvent(id: string, type: string, object: object) {
  return { id, object: 'event', type, data: { object } };
}

/** A pack's payment-mode Checkout Session paid with payment intent `intent` (by `customer`, whose card it saved, when given). */
export function packCheckoutCompleted(eventId: string, purchaseId: string, accountId: string, intent: string, customer?: string) {
  return stripeEvent(eventId, 'checkout.session.completed', {
    id: `cs_${purchaseId}`, object: 'checkout.session', client_reference_id: purchaseId, payment_status: 'paid', payment_intent: intent, metadata: { purchaseId, accountId },
    ...(customer ? { customer } : {}),
  });
}

/** An off-session PaymentIntent of auto top-up that finished at Stripe after answering `processing`. */
export function offSessionPaymentEnded(eventId: string, intent: string, purchaseId: string, accountId: string, paid: boolean) {
  return stripeEvent(eventId, paid ? 'payment_intent.succeeded' : 'payment_intent.payment_failed', {
    id: intent, object: 'payment_intent', status: paid ? 'succeeded' : 'requires_payment_method', metadata: { purchaseId, accountId, automatic: 'true' },
    ...(paid ? {} : { last_payment_error: { message: 'Your card was declined.' } }),
  });
}

/** A plan's subscription-mode Checkout Session paid: the subscription it started and its first invoice. */
export function planCheckoutCompleted(eventId: string, p: { session: string; purchaseId: string; accountId: string; subscription: string; invoice: string | null }) {
  return stripeEvent(eventId, 'checkout.session.completed', {
    id: p.session, object: 'checkout.session', mode: 'subscription', payment_status: 'paid', client_reference_id: p.purchaseId,
    subscription: p.subscription, customer: `cus_${p.accountId}`, invoice: p.invoice, metadata: { purchaseId: p.purchaseId, accountId: p.accountId, kind: 'PLAN' },
  });
}

/**
 * Posts `event` to the app's Stripe webhook signed with `secret` (the app's by default) and
 * answers the status; `body`, when given, is sent instead of the signed payload (tampered on the way).
 */
export async function deliverEvent(app: TestApp, event: object, opts: { secret?: string; body?: string } = {}): Promise<number> {
  const payload = JSON.stringify(event);
  const header = signer.webhooks.generateTestHeaderString({ payload, secret: opts.secret ?? STRIPE_WEBHOOK_SECRET });
  const res = await fetch(app.url.replace('/graphql', '/webhooks/stripe'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': header },
    body: opts.body ?? payload,
  });
  await res.text();
  return res.status;
}
