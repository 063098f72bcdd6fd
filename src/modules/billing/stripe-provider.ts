/**
 * The `stripe` provider: purchases go through Stripe Checkout Sessions (created with the
 * purchase id as Stripe's idempotency key, so a retried charge is one session); the purchase
 * stays PENDING until Stripe's `checkout.session.completed` webhook says it is paid. Refunds go
 * through Stripe's refunds API on the payment intent.
 */
import Stripe from 'stripe';
import type { ChargeRequest, ChargeResult, PaymentProvider } from './payment-provider';

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

  async charge(req: ChargeRequest): Promise<ChargeResult> {
    try {
      const session = await this.client.checkout.sessions.create(
        {
          mode: 'payment',
          client_reference_id: req.purchaseId,
          metadata: { purchaseId: req.purchaseId, accountId: req.accountId },
          line_items: [{ quantity: 1, price_data: { currency: req.currency.toLowerCase(), unit_amount: req.amountCents, product_data: { name: req.description } } }],
          success_url: this.settings.successUrl,
          cancel_url: this.settings.cancelUrl,
        },
        { idempotencyKey: `purchase-${req.purchaseId}` },
      );
      return { status: 'pending', ref: session.id, checkoutUrl: session.url ?? '' };
    } catch (e) {
      return { status: 'failed', reason: e instanceof Error ? e.message : 'Stripe refused the checkout' };
    }
  }

  async refund(ref: string, amountCents: number): Promise<{ ref: string }> {
    const refund = await this.client.refunds.create({ payment_intent: ref, amount: amountCents }, { idempotencyKey: `refund-${ref}-${amountCents}` });
    return { ref: refund.id };
  }

  /** The verified event, or throws (bad signature, stale timestamp, malformed body). */
  verify(rawBody: Buffer, signature: string | undefined): Stripe.Event {
    if (!signature) throw new Error('missing Stripe-Signature header');
    return this.client.webhooks.constructEvent(rawBody, signature, this.settings.webhookSecret);
  }
}
