/**
 * What a payment provider tells us, in one provider-neutral shape: Stripe's webhooks are
 * translated into these (stripe-webhook.ts), the sandbox makes them itself (`due`). Each event
 * is applied once, keyed by its id, in the transaction of its effect.
 */
export type InvoiceReason = 'create' | 'renewal' | 'upgrade' | 'other';

/** A subscription's invoice, as plans need it. */
export interface SubscriptionInvoice {
  id: string;
  subscription: string;
  reason: InvoiceReason;
  /** The provider's own word for the reason (logs). */
  rawReason: string | null;
  amountPaid: number;
  currency?: string;
  /** The subscription's metadata when the invoice was made (an upgrade names its purchase and tier). */
  metadata: Record<string, string>;
}

export type ProviderEvent =
  | { id: string; type: 'checkout.paid'; mode: 'plan'; purchaseId: string; accountId: string; checkout: string; subscription: string; customer: string | null; invoice: string | null }
  /** A pack paid: at a checkout page (which saved the card on `customer`), or off-session (auto top-up; `checkout` is then the payment). */
  | { id: string; type: 'checkout.paid'; mode: 'pack'; purchaseId: string; accountId: string; checkout: string; payment: string | null; customer?: string | null }
  | { id: string; type: 'checkout.failed'; purchaseId: string; reason: string }
  | { id: string; type: 'invoice.paid' | 'invoice.failed'; invoice: SubscriptionInvoice }
  | { id: string; type: 'subscription.ended'; subscription: string }
  | { id: string; type: 'refund.succeeded'; refunds: string[]; payment: string | null }
  /**
   * A charge was refunded, in part or in full: by a refund we asked for (it is then only
   * confirmed), or by one made at the provider (a reversal). `payment` and `invoice` name what was
   * paid (matched against purchases.provider_ref); `refunds`: the refund ids the event lists;
   * `amountRefunded`: what the charge has refunded in all; `amount`: the charge's amount (null: unknown).
   */
  | { id: string; type: 'payment.refunded'; payment: string | null; invoice: string | null; refunds: string[]; amountRefunded: number; amount: number | null }
  /** The buyer disputed a payment and the money went back to them (an inquiry without money moved is not one). */
  | { id: string; type: 'payment.disputed'; payment: string | null; invoice: string | null; dispute: string; amount: number }
  /** A dispute closed: won (the money is ours again) or lost. */
  | { id: string; type: 'dispute.closed'; payment: string | null; invoice: string | null; dispute: string; amount: number; won: boolean }
  /** Recorded (a redelivery is answered the same), nothing to do. */
  | { id: string; type: 'ignored' };
