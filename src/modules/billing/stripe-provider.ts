/**
 * The `stripe` provider: purchases go through Stripe Checkout Sessions; the purchase stays
 * PENDING until Stripe's `checkout.session.completed` webhook says it is paid. Refunds go
 * through Stripe's refunds API on the payment intent (a plan's: on its invoice's payment).
 * Plans are Stripe subscriptions: a subscription-mode checkout starts one, Stripe's invoices
 * renew it, and upgrades, scheduled lower tiers and cancellations are told to Stripe through its
 * subscriptions API. Every call carries the payment intent's idempotency key.
 */
import Stripe from 'stripe';
import type { ChargeRequest, ChargeResult, PaymentProvider, PlanPrice, SubscribeRequest, SubscribeResult, UpgradeResult } from './payment-provider';
import type { ProviderEvent } from './provider-events';

const stripeInterval = (i: PlanPrice['interval']): 'month' | 'year' => (i === 'ANNUAL' ? 'year' : 'month');
const idOf = (v: string | { id: string } | null | undefined): string | undefined => (typeof v === 'string' ? v : v?.id);
const isStripeError = (e: unknown): e is { type: string; statusCode?: number; code?: string; message: string } =>
  typeof e === 'object' && e !== null && typeof (e as { type?: unknown }).type === 'string' && (e as { type: string }).type.startsWith('Stripe');
/**
 * A Checkout Session Stripe refused for good (a 4xx other than 409 and 429: bad parameters, an
 * account not set up) is a failed payment; anything else (network, 5xx, rate limit, a
 * concurrent request with the key) is thrown, so the intent is tried again under its key.
 */
function checkoutRefusedOrThrow(e: unknown): { status: 'failed'; reason: string } {
  if (isStripeError(e) && e.statusCode !== undefined && e.statusCode < 500 && e.statusCode !== 429 && e.statusCode !== 409) {
    return { status: 'failed', reason: e.message };
  }
  throw e;
}

/**
 * Stripe refused the payment itself (declined card, failed authentication): a definite answer.
 * Anything else — connection errors, 5xx, rate limits, conflicts — says nothing about whether
 * the request took effect, so it is not an outcome to keep.
 */
const isPaymentRefusal = (e: unknown): e is { message: string } => isStripeError(e) && (e.type === 'StripeCardError' || e.statusCode === 402);

/** Why an off-session payment the bank wants the cardholder to confirm failed, as the account is told. */
const NEEDS_AUTHENTICATION = 'your bank asks you to confirm this payment yourself (authentication required): buy a pack by hand once to confirm your card';

export interface StripeSettings {
  secretKey: string;
  webhookSecret: string;
  successUrl: string;
  cancelUrl: string;
  /** Another API endpoint (a local stub in tests): http(s)://host:port */
  apiBase?: string;
}

export class StripeProvider implements PaymentProvider {
  readonly name = 'stripe';
  readonly client: Stripe;

  constructor(private readonly settings: StripeSettings) {
    const base = settings.apiBase ? new URL(settings.apiBase) : undefined;
    this.client = new Stripe(settings.secretKey, {
      maxNetworkRetries: 2,
      ...(base ? { host: base.hostname, port: Number(base.port || (base.protocol === 'https:' ? 443 : 80)), protocol: base.protocol.replace(':', '') as 'http' | 'https' } : {}),
    });
  }

  /**
   * A Checkout Session that also saves the card for off-session payments (auto top-up): on the
   * account's customer when it has one, on a new customer otherwise (told back by the webhook).
   */
  async charge(req: ChargeRequest, key: string): Promise<ChargeResult> {
    return this.checkout(
      {
        mode: 'payment',
        client_reference_id: req.purchaseId,
        ...(req.customerRef ? { customer: req.customerRef } : { customer_creation: 'always' }),
        payment_intent_data: { setup_future_usage: 'off_session', metadata: { purchaseId: req.purchaseId, accountId: req.accountId } },
        metadata: { purchaseId: req.purchaseId, accountId: req.accountId },
        line_items: [{ quantity: 1, price_data: { currency: req.currency.toLowerCase(), unit_amount: req.amountCents, product_data: { name: req.description } } }],
      },
      key,
    );
  }

  /**
   * An off-session PaymentIntent, confirmed at once, on the customer's saved card, under the
   * purchase's idempotency key. Stripe refusing it — declined, or the bank asking for the
   * cardholder (`authentication_required`) — is a failed payment; `processing` waits for the
   * payment_intent webhook.
   */
  async chargeSaved(req: ChargeRequest, key: string): Promise<ChargeResult> {
    const noCard = { status: 'failed' as const, reason: 'no saved card: buy a credit pack by hand once, and the card you pay with is saved for auto top-up' };
    if (!req.customerRef) return noCard;
    const cards = await this.client.paymentMethods.list({ customer: req.customerRef, type: 'card', limit: 1 });
    const card = cards.data[0];
    if (!card) return noCard;
    try {
      const intent = await this.client.paymentIntents.create(
        {
          amount: req.amountCents, currency: req.currency.toLowerCase(), customer: req.customerRef, payment_method: card.id, off_session: true, confirm: true,
          description: req.description, metadata: { purchaseId: req.purchaseId, accountId: req.accountId, automatic: 'true' },
        },
        { idempotencyKey: key },
      );
      if (intent.status === 'succeeded') return { status: 'succeeded', ref: intent.id };
      if (intent.status === 'processing') return { status: 'pending', ref: intent.id, checkoutUrl: null };
      return { status: 'failed', reason: intent.status === 'requires_action' ? NEEDS_AUTHENTICATION : `the payment was not completed (${intent.status})` };
    } catch (e) {
      if (isPaymentRefusal(e)) return { status: 'failed', reason: (e as { code?: string }).code === 'authentication_required' ? NEEDS_AUTHENTICATION : e.message };
      throw e;
    }
  }

  /** A Checkout Session to pay at (pending until its webhook), or the refusal Stripe gave for good. */
  private async checkout(params: Stripe.Checkout.SessionCreateParams, key: string): Promise<{ status: 'pending'; ref: string; checkoutUrl: string } | { status: 'failed'; reason: string }> {
    try {
      const session = await this.client.checkout.sessions.create(
        { ...params, success_url: this.settings.successUrl, cancel_url: this.settings.cancelUrl },
        { idempotencyKey: key },
      );
      return { status: 'pending', ref: session.id, checkoutUrl: session.url ?? '' };
    } catch (e) {
      return checkoutRefusedOrThrow(e);
    }
  }

  /**
   * `ref` is a payment intent (packs), an invoice (plans: its paid payment is refunded), or a
   * checkout session (a completion that named neither): refunded through what the session paid.
   */
  async refund(ref: string, amountCents: number, key: string): Promise<{ ref: string }> {
    let target: { payment_intent: string } | { charge: string } = { payment_intent: ref };
    let invoiceRef = ref.startsWith('in_') ? ref : undefined;
    if (ref.startsWith('cs_')) {
      const session = await this.client.checkout.sessions.retrieve(ref);
      invoiceRef = idOf(session.invoice);
      const intent = idOf(session.payment_intent);
      if (!invoiceRef && !intent) throw new Error(`Stripe checkout session ${ref} has no invoice or payment to refund`);
      if (intent) target = { payment_intent: intent };
    }
    if (invoiceRef) {
      const invoice = await this.client.invoices.retrieve(invoiceRef, { expand: ['payments'] });
      const paid = invoice.payments?.data.find((p) => p.status === 'paid') ?? invoice.payments?.data[0];
      const intent = idOf(paid?.payment.payment_intent);
      const charge = idOf(paid?.payment.charge);
      if (intent) target = { payment_intent: intent };
      else if (charge) target = { charge };
      else throw new Error(`Stripe invoice ${invoiceRef} has no payment to refund`);
    }
    const refund = await this.client.refunds.create({ ...target, amount: amountCents }, { idempotencyKey: key });
    return { ref: refund.id };
  }

  /** The verified event, or throws (bad signature, stale timestamp, malformed body). */
  verify(rawBody: Buffer, signature: string | undefined): Stripe.Event {
    if (!signature) throw new Error('missing Stripe-Signature header');
    return this.client.webhooks.constructEvent(rawBody, signature, this.settings.webhookSecret);
  }

  async subscribe(req: SubscribeRequest, key: string): Promise<SubscribeResult> {
    return this.checkout(
      {
        mode: 'subscription',
        client_reference_id: req.purchaseId,
        ...(req.customerRef ? { customer: req.customerRef } : {}),
        metadata: { purchaseId: req.purchaseId, accountId: req.accountId, kind: 'PLAN' },
        subscription_data: { metadata: { accountId: req.accountId, purchaseId: req.purchaseId } },
        line_items: [{ quantity: 1, price_data: this.priceData(req.price) }],
      },
      key,
    );
  }

  async expireCheckout(checkoutRef: string): Promise<boolean> {
    try {
      await this.client.checkout.sessions.expire(checkoutRef);
      return true;
    } catch (e) {
      if (!isStripeError(e)) throw e;
      // Already expired is fine; complete (paid) is not.
      const session = await this.client.checkout.sessions.retrieve(checkoutRef);
      return session.status !== 'complete';
    }
  }

  async upgrade(subscription: string, req: { purchaseId: string; price: PlanPrice; metadata: Record<string, string>; resume: boolean }, key: string): Promise<UpgradeResult> {
    try {
      const item = await this.itemOf(subscription);
      const price = await this.price(req.price, `plan-price-${req.purchaseId}`);
      const updated = await this.client.subscriptions.update(
        subscription,
        {
          items: [{ id: item, price }],
          proration_behavior: 'always_invoice',
          payment_behavior: 'error_if_incomplete',
          ...(req.resume ? { cancel_at_period_end: false } : {}),
          metadata: req.metadata,
          expand: ['latest_invoice'],
        },
        { idempotencyKey: key },
      );
      const invoice = updated.latest_invoice;
      if (!invoice || typeof invoice === 'string') throw new Error(`Stripe did not return the proration invoice of ${subscription}`);
      return { status: 'succeeded', ref: invoice.id, amountCents: invoice.amount_paid };
    } catch (e) {
      // Only a refused payment is a failed upgrade; anything else throws, so nothing is kept and a
      // retry (same purchase id, same Stripe idempotency key) replays the update at Stripe.
      if (isPaymentRefusal(e)) return { status: 'failed', reason: e.message };
      throw e;
    }
  }

  async reprice(subscription: string, price: PlanPrice, key: string): Promise<void> {
    const item = await this.itemOf(subscription);
    const id = await this.price(price, `plan-price-${subscription}-${price.interval}-${price.amountCents}-${price.currency}`);
    await this.client.subscriptions.update(subscription, { items: [{ id: item, price: id }], proration_behavior: 'none' }, { idempotencyKey: key });
  }

  async cancelAtPeriodEnd(subscription: string, cancel: boolean, key: string): Promise<void> {
    await this.client.subscriptions.update(subscription, { cancel_at_period_end: cancel }, { idempotencyKey: key });
  }

  async cancelAt(subscription: string, at: Date, key: string): Promise<void> {
    await this.client.subscriptions.update(subscription, { cancel_at: Math.floor(at.getTime() / 1000), proration_behavior: 'none' }, { idempotencyKey: key });
  }

  /** Stripe tells what falls due with webhooks. */
  async due(): Promise<ProviderEvent[]> {
    return [];
  }

  async delivered(): Promise<void> {
    // nothing: Stripe moves on by itself
  }

  async cancelNow(subscription: string, key: string): Promise<void> {
    try {
      await this.client.subscriptions.cancel(subscription, { prorate: false, invoice_now: false }, { idempotencyKey: key });
    } catch (e) {
      if (isStripeError(e) && (e.statusCode === 404 || e.code === 'resource_missing')) return;
      throw e;
    }
  }

  private priceData(p: PlanPrice) {
    return { currency: p.currency.toLowerCase(), unit_amount: p.amountCents, recurring: { interval: stripeInterval(p.interval) }, product_data: { name: p.name } };
  }

  private async price(p: PlanPrice, idempotencyKey: string): Promise<string> {
    const price = await this.client.prices.create(this.priceData(p), { idempotencyKey });
    return price.id;
  }

  private async itemOf(subscription: string): Promise<string> {
    const sub = await this.client.subscriptions.retrieve(subscription);
    const item = sub.items.data[0];
    if (!item) throw new Error(`Stripe subscription ${subscription} has no item`);
    return item.id;
  }
}
