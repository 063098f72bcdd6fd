/**
 * POST /webhooks/stripe: the signature is verified on the raw body (400 and nothing changes
 * when it does not verify); each event is applied once, in the transaction of its effect, keyed
 * by its id — a redelivered event, even concurrently, changes nothing. Effects are keyed too
 * (a purchase completes once, an invoice renews once), so two events about one thing apply once.
 *
 * Packs: checkout.session.completed / async_payment_succeeded / async_payment_failed / expired.
 * Plans: checkout.session.completed (subscription mode) starts the plan; invoice.paid (and
 * invoice.payment_succeeded) renews it or records a lost upgrade; invoice.payment_failed makes
 * it PAST_DUE; customer.subscription.deleted ends it. Refunds: charge.refunded, refund.created /
 * refund.updated (succeeded) confirm them.
 */
import type { Request, Response } from 'express';
import type Stripe from 'stripe';
import type { Logger } from 'pino';
import { transaction, type Tx } from '../../common/db/transaction';
import type { Services } from '../../services';
import type { SubscriptionInvoice } from './plan.service';
import { StripeProvider } from './stripe-provider';

const idOf = (v: string | { id: string } | null | undefined): string | undefined => (typeof v === 'string' ? v : v?.id);

/** The parts of a subscription's invoice that plans need; undefined for any other invoice. */
function subscriptionInvoice(i: Stripe.Invoice): SubscriptionInvoice | undefined {
  const details = i.parent?.subscription_details;
  const subscription = idOf(details?.subscription);
  if (!subscription || !i.id) return undefined;
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(details?.metadata ?? {})) if (typeof v === 'string') metadata[k] = v;
  return { id: i.id, subscription, billingReason: i.billing_reason ?? null, amountPaid: i.amount_paid ?? 0, currency: i.currency ?? undefined, metadata };
}

/** Stripe confirms that these refunds (by their ids) were paid out. */
async function confirmRefunds(tx: Tx, refundIds: string[], now: Date): Promise<void> {
  await tx.query(
    `UPDATE refund_requests SET provider_confirmed_at = $2 WHERE provider_ref = ANY($1) AND status = 'APPROVED' AND provider_confirmed_at IS NULL`,
    [refundIds, now],
  );
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
      // Read before the transaction: a catalog reload inside it would need a second pool connection.
      const tiers = await services.catalog.tiers();
      const applied = await transaction(services.db, async (tx) => {
        const fresh = await tx.query(
          `INSERT INTO webhook_events (provider, event_id, type, received_at) VALUES ('stripe', $1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1`,
          [event.id, event.type, services.clock.now()],
        );
        if (!fresh.length) return false;
        switch (event.type) {
          case 'checkout.session.completed':
          case 'checkout.session.async_payment_succeeded': {
            const s = event.data.object as Stripe.Checkout.Session;
            if (s.payment_status !== 'paid') break; // an async payment: wait for async_payment_succeeded
            const purchaseId = s.client_reference_id ?? s.metadata?.purchaseId;
            const accountId = s.metadata?.accountId;
            if (!purchaseId || !accountId) break;
            if (s.mode === 'subscription') {
              const subscription = idOf(s.subscription);
              if (subscription) {
                await services.plans.completeCheckout(tx, { purchaseId, accountId, subscription, customer: idOf(s.customer) ?? null, invoice: idOf(s.invoice) ?? null, checkout: s.id }, tiers);
              }
              break;
            }
            const intent = typeof s.payment_intent === 'string' ? s.payment_intent : s.payment_intent?.id;
            await services.billing.completeIn(tx, accountId, purchaseId, intent ?? s.id, true);
            break;
          }
          case 'checkout.session.async_payment_failed':
          case 'checkout.session.expired': {
            const s = event.data.object as Stripe.Checkout.Session;
            const purchaseId = s.client_reference_id ?? s.metadata?.purchaseId;
            if (purchaseId) await services.billing.failIn(tx, purchaseId, event.type === 'checkout.session.expired' ? 'checkout expired' : 'payment failed');
            break;
          }
          case 'invoice.paid':
          case 'invoice.payment_succeeded':
          case 'invoice.payment_failed': {
            const invoice = subscriptionInvoice(event.data.object as Stripe.Invoice);
            if (!invoice) break; // not a subscription's invoice
            if (event.type === 'invoice.payment_failed') await services.plans.invoiceFailed(tx, invoice);
            else await services.plans.renewFromInvoice(tx, invoice, tiers);
            break;
          }
          case 'customer.subscription.deleted': {
            await services.plans.subscriptionEnded(tx, (event.data.object as Stripe.Subscription).id, tiers);
            break;
          }
          case 'charge.refunded': {
            const c = event.data.object as Stripe.Charge;
            const intent = typeof c.payment_intent === 'string' ? c.payment_intent : c.payment_intent?.id;
            if (intent) {
              await tx.query(
                `UPDATE refund_requests r SET provider_confirmed_at = $2 FROM purchases p
                  WHERE p.id = r.purchase_id AND p.provider = 'stripe' AND p.provider_ref = $1 AND r.status = 'APPROVED' AND r.provider_confirmed_at IS NULL`,
                [intent, services.clock.now()],
              );
            }
            const refunds = (c.refunds?.data ?? []).filter((r) => r.status === 'succeeded').map((r) => r.id);
            if (refunds.length) await confirmRefunds(tx, refunds, services.clock.now());
            break;
          }
          case 'refund.created':
          case 'refund.updated': {
            // A plan's refund is on its invoice's payment: matched by the refund's own id.
            const r = event.data.object as Stripe.Refund;
            if (r.status === 'succeeded') await confirmRefunds(tx, [r.id], services.clock.now());
            break;
          }
          default:
            break; // recorded, nothing to do
        }
        return true;
      });
      res.json({ received: true, applied });
    } catch (e) {
      log.error({ err: e, event: event.id }, 'stripe webhook failed');
      res.status(500).json({ error: 'internal error; Stripe will retry' });
    }
  };
}
