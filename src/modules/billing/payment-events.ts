/**
 * Applies what a payment provider tells (provider-events.ts), whichever the provider: once per
 * event id, in the transaction of its effect; the payment intents an effect records run after
 * that transaction commits. An unknown account or purchase is an answer (recorded, nothing
 * applied); any other error propagates, so the event is not recorded and comes again.
 */
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import { transaction, type Tx } from '../../common/db/transaction';
import type { CatalogService } from '../catalog/catalog.service';
import type { ReversalService } from '../refunds/reversal.service';
import type { BillingService } from './billing.service';
import type { PaymentIntents } from './payment-intents';
import { tierMap, type PlanLifecycle } from './plans/plan-lifecycle';
import type { ProviderEvent } from './provider-events';

export class PaymentEvents {
  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly catalog: CatalogService,
    private readonly plans: PlanLifecycle,
    private readonly billing: BillingService,
    private readonly intents: PaymentIntents,
    private readonly providerName: string,
    private readonly reversals: ReversalService,
  ) {}

  /** True when the event was new here (and applied). `rawType`: the provider's own name for it, kept with it. */
  async apply(e: ProviderEvent, rawType: string = e.type): Promise<boolean> {
    // Read before the transaction: a catalog reload inside it would need a second pool connection.
    const tiers = tierMap(await this.catalog.tiers());
    const out = await transaction(this.db, async (tx) => {
      const fresh = await tx.query(
        `INSERT INTO webhook_events (provider, event_id, type, received_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1`,
        [this.providerName, e.id, rawType, this.clock.now()],
      );
      if (!fresh.length) return { applied: false, group: null };
      return { applied: true, group: await this.effect(tx, e, tiers) };
    });
    if (out.group) await this.intents.runGroup(out.group);
    return out.applied;
  }

  private async effect(tx: Tx, e: ProviderEvent, tiers: ReturnType<typeof tierMap>): Promise<string | null> {
    switch (e.type) {
      case 'ignored':
        return null;
      case 'checkout.paid':
        if (e.mode === 'plan') return this.plans.checkoutPaid(tx, { purchaseId: e.purchaseId, accountId: e.accountId, subscription: e.subscription, customer: e.customer, ref: e.invoice ?? e.checkout }, tiers);
        await this.billing.completeIn(tx, e.accountId, e.purchaseId, e.payment ?? e.checkout, true);
        // The checkout saved the card on this customer: auto top-up charges it off-session.
        if (e.customer) await tx.query('UPDATE accounts SET customer_ref = $2 WHERE id = $1 AND customer_ref IS NULL', [e.accountId, e.customer]);
        return null;
      case 'checkout.failed':
        await this.billing.failIn(tx, e.purchaseId, e.reason);
        return null;
      case 'invoice.paid':
        return this.plans.invoicePaid(tx, e.invoice, tiers);
      case 'invoice.failed':
        return this.plans.invoiceFailed(tx, e.invoice, tiers);
      case 'subscription.ended':
        return this.plans.subscriptionEnded(tx, e.subscription, tiers);
      case 'refund.succeeded':
        await this.confirmRefunds(tx, e.payment, e.refunds);
        return null;
      case 'payment.refunded':
        // Refunds we asked for are confirmed; money back beyond them is a reversal (reversal.service.ts).
        await this.confirmRefunds(tx, e.payment, e.refunds);
        return this.reversals.refunded(tx, e, e.amountRefunded, e.amount, tiers);
      case 'payment.disputed':
        return this.reversals.disputed(tx, e, e.dispute, e.amount, tiers);
      case 'dispute.closed':
        return this.reversals.disputeClosed(tx, e, e.dispute, e.amount, e.won, tiers);
    }
  }

  /** The provider confirms refunds we asked for: by the payment refunded, or by the refunds' own ids. */
  private async confirmRefunds(tx: Tx, payment: string | null, refunds: string[]): Promise<void> {
    const now = this.clock.now();
    if (payment) {
      await tx.query(
        `UPDATE refund_requests r SET provider_confirmed_at = $3 FROM purchases p
          WHERE p.id = r.purchase_id AND p.provider = $2 AND p.provider_ref = $1 AND r.status = 'APPROVED' AND r.provider_confirmed_at IS NULL`,
        [payment, this.providerName, now],
      );
    }
    if (refunds.length) {
      await tx.query(
        `UPDATE refund_requests SET provider_confirmed_at = $2 WHERE provider_ref = ANY($1) AND status = 'APPROVED' AND provider_confirmed_at IS NULL`,
        [refunds, now],
      );
    }
  }
}
