/**
 * POST /webhooks/stripe: the signature is verified on the raw body (400 and nothing changes
 * when it does not verify); each event is applied once, in the transaction of its effect, keyed
 * by its id — a redelivered event, even concurrently, changes nothing.
 */
import type { Request, Response } from 'express';
import type Stripe from 'stripe';
import type { Logger } from 'pino';
import { transaction } from '../../common/db/transaction';
import type { Services } from '../../services';
import { StripeProvider } from './stripe-provider';

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
