/**
 * POST /webhooks/stripe: the signature is verified on the raw body (400 and nothing changes when
 * it does not verify); the event is translated into a provider-neutral ProviderEvent and applied
 * once (payment-events.ts). Events of no interest are recorded and answered 200.
 *
 * Packs: checkout.session.completed / async_payment_succeeded / async_payment_failed / expired;
 * auto top-up's off-session payments still processing: payment_intent.succeeded / payment_failed.
 * Plans: checkout.session.completed (subscription mode); invoice.paid (and
 * invoice.payment_succeeded); invoice.payment_failed; customer.subscription.deleted.
 * Refunds: charge.refunded, refund.created / refund.updated (succeeded) confirm them.
 * Money reversed at Stripe: charge.refunded for a refund we did not ask for, charge.dispute.created
 * (and funds_withdrawn, for an inquiry that became a dispute), charge.dispute.closed (won or lost).
 */
import type { Request, Response } from 'express';
import type Stripe from 'stripe';
import type { Logger } from 'pino';
import type { Services } from '../../services';
import type { InvoiceReason, ProviderEvent, SubscriptionInvoice } from './provider-events';
import { StripeProvider } from './stripe-provider';

const idOf = (v: string | { id: string } | null | undefined): string | undefined => (typeof v === 'string' ? v : v?.id);

const REASONS: Record<string, InvoiceReason> = { subscription_create: 'create', subscription_cycle: 'renewal', subscription_update: 'upgrade' };

/** The parts of a subscription's invoice that plans need; undefined for any other invoice. */
function subscriptionInvoice(i: Stripe.Invoice): SubscriptionInvoice | undefined {
  const details = i.parent?.subscription_details;
  const subscription = idOf(details?.subscription);
  if (!subscription || !i.id) return undefined;
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(details?.metadata ?? {})) if (typeof v === 'string') metadata[k] = v;
  const raw = i.billing_reason ?? null;
  return { id: i.id, subscription, reason: (raw && REASONS[raw]) || 'other', rawReason: raw, amountPaid: i.amount_paid ?? 0, currency: i.currency ?? undefined, metadata };
}

/**
 * The invoice a charge paid, when the event says: Charge objects carry `invoice` in API versions
 * before 2025-03-31 (the library no longer types it). Plan purchases are known by their invoice.
 */
function invoiceOf(c: Stripe.Charge): string | null {
  return idOf((c as unknown as { invoice?: string | { id: string } | null }).invoice) ?? null;
}

/** Stripe's event as a ProviderEvent, or undefined when it asks nothing of us. */
export function translate(event: Stripe.Event): ProviderEvent | undefined {
  switch (event.type) {
    case 'checkout.session.completed':
    case 'checkout.session.async_payment_succeeded': {
      const s = event.data.object as Stripe.Checkout.Session;
      if (s.payment_status !== 'paid') return undefined; // an async payment: wait for async_payment_succeeded
      const purchaseId = s.client_reference_id ?? s.metadata?.purchaseId;
      const accountId = s.metadata?.accountId;
      if (!purchaseId || !accountId) return undefined;
      if (s.mode === 'subscription') {
        const subscription = idOf(s.subscription);
        if (!subscription) return undefined;
        return { id: event.id, type: 'checkout.paid', mode: 'plan', purchaseId, accountId, checkout: s.id, subscription, customer: idOf(s.customer) ?? null, invoice: idOf(s.invoice) ?? null };
      }
      return { id: event.id, type: 'checkout.paid', mode: 'pack', purchaseId, accountId, checkout: s.id, payment: idOf(s.payment_intent) ?? null, customer: idOf(s.customer) ?? null };
    }
    case 'payment_intent.succeeded':
    case 'payment_intent.payment_failed': {
      // Only auto top-up's off-session payments are ours to settle here (a checkout's payment is settled by its session).
      const pi = event.data.object as Stripe.PaymentIntent;
      const purchaseId = pi.metadata?.purchaseId;
      const accountId = pi.metadata?.accountId;
      if (pi.metadata?.automatic !== 'true' || !purchaseId || !accountId) return undefined;
      if (event.type === 'payment_intent.succeeded') return { id: event.id, type: 'checkout.paid', mode: 'pack', purchaseId, accountId, checkout: pi.id, payment: pi.id };
      return { id: event.id, type: 'checkout.failed', purchaseId, reason: pi.last_payment_error?.message ?? 'payment failed' };
    }
    case 'checkout.session.async_payment_failed':
    case 'checkout.session.expired': {
      const s = event.data.object as Stripe.Checkout.Session;
      const purchaseId = s.client_reference_id ?? s.metadata?.purchaseId;
      return purchaseId ? { id: event.id, type: 'checkout.failed', purchaseId, reason: event.type === 'checkout.session.expired' ? 'checkout expired' : 'payment failed' } : undefined;
    }
    case 'invoice.paid':
    case 'invoice.payment_succeeded':
    case 'invoice.payment_failed': {
      const invoice = subscriptionInvoice(event.data.object as Stripe.Invoice);
      if (!invoice) return undefined; // not a subscription's invoice
      return { id: event.id, type: event.type === 'invoice.payment_failed' ? 'invoice.failed' : 'invoice.paid', invoice };
    }
    case 'customer.subscription.deleted':
      return { id: event.id, type: 'subscription.ended', subscription: (event.data.object as Stripe.Subscription).id };
    case 'charge.refunded': {
      // Ours (a refund we asked for: confirmed) or made at Stripe (a reversal): decided where it is applied.
      const c = event.data.object as Stripe.Charge;
      const refunds = (c.refunds?.data ?? []).filter((r) => r.status === 'succeeded').map((r) => r.id);
      const amountRefunded = typeof c.amount_refunded === 'number' ? c.amount_refunded : c.refunded && typeof c.amount === 'number' ? c.amount : 0;
      return { id: event.id, type: 'payment.refunded', refunds, payment: idOf(c.payment_intent) ?? null, invoice: invoiceOf(c), amountRefunded, amount: typeof c.amount === 'number' ? c.amount : null };
    }
    case 'charge.dispute.created':
    case 'charge.dispute.funds_withdrawn': {
      // An inquiry (warning_*) moves no money: nothing yet. If it becomes a dispute, funds_withdrawn says so.
      const d = event.data.object as Stripe.Dispute;
      if (d.status?.startsWith('warning_')) return undefined;
      return { id: event.id, type: 'payment.disputed', dispute: d.id, payment: idOf(d.payment_intent) ?? null, invoice: typeof d.charge === 'object' && d.charge ? invoiceOf(d.charge) : null, amount: d.amount ?? 0 };
    }
    case 'charge.dispute.closed': {
      const d = event.data.object as Stripe.Dispute;
      if (d.status !== 'won' && d.status !== 'lost') return undefined; // an inquiry closed (warning_closed), or a state that moves no money
      return { id: event.id, type: 'dispute.closed', dispute: d.id, payment: idOf(d.payment_intent) ?? null, invoice: typeof d.charge === 'object' && d.charge ? invoiceOf(d.charge) : null, amount: d.amount ?? 0, won: d.status === 'won' };
    }
    case 'refund.created':
    case 'refund.updated': {
      const r = event.data.object as Stripe.Refund;
      return r.status === 'succeeded' ? { id: event.id, type: 'refund.succeeded', refunds: [r.id], payment: null } : undefined;
    }
    default:
      return undefined;
  }
}

export function stripeWebhook(services: Services, log: Logger) {
  return async (req: Request, res: Response): Promise<void> => {
    const provider = services.payments;
    if (!(provider instanceof StripeProvider)) {
      res.status(404).json({ error: 'the stripe provider is not enabled' });
      return;
    }
    let event: Stripe.Event;
    try {
      event = provider.verify(req.body as Buffer, req.header('stripe-signature'));
    } catch (e) {
      res.status(400).json({ error: `webhook signature did not verify: ${e instanceof Error ? e.message : 'invalid'}` });
      return;
    }
    try {
      const applied = await services.paymentEvents.apply(translate(event) ?? { id: event.id, type: 'ignored' }, event.type);
      res.json({ received: true, applied });
    } catch (e) {
      log.error({ err: e, event: event.id }, 'stripe webhook failed');
      res.status(500).json({ error: 'internal error; Stripe will retry' });
    }
  };
}
