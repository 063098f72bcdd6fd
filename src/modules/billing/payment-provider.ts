/**
 * What the service asks of a payment provider, whichever it is. Every call carries a stable
 * idempotency key (the payment intent's), so a call repeated after a crash or a timeout is one
 * call at the provider. `failed` is the provider's definite refusal (a declined card); anything
 * whose outcome is unknown (network, 5xx) throws, and the intent is re-driven later with its key.
 *
 * Plans are the provider's subscriptions for every provider: a subscription starts when its first
 * payment is made (at once in the sandbox, through a checkout page at Stripe), each period after
 * the first starts when the provider says its renewal invoice was paid, a failed one makes the
 * plan PAST_DUE, and the provider ending it ends the plan. What the provider says arrives as
 * ProviderEvents (Stripe: webhooks; the sandbox: `due`, in-process).
 */
import type { PlanPrice } from './plans/plan-price';
import type { ProviderEvent } from './provider-events';

export type { PlanPrice } from './plans/plan-price';

export type ChargeResult =
  | { status: 'succeeded'; ref: string }
  /** Waiting: on the checkout page at `checkoutUrl`, or (null) for the provider to finish an off-session payment. */
  | { status: 'pending'; ref: string; checkoutUrl: string | null }
  | { status: 'failed'; reason: string };

export interface ChargeRequest {
  purchaseId: string;
  accountId: string;
  amountCents: number;
  currency: string;
  description: string;
  /** The provider's customer of the account, when it has one (its saved payment method pays off-session). */
  customerRef: string | null;
}

/** A subscription's first payment: made at once (`paid`), or on the provider's checkout page (`pending`). */
export type SubscribeResult =
  | { status: 'paid'; subscription: string; customer: string | null; invoice: string; amountCents: number }
  | { status: 'pending'; ref: string; checkoutUrl: string }
  | { status: 'failed'; reason: string };

export interface SubscribeRequest {
  purchaseId: string;
  accountId: string;
  customerRef: string | null;
  price: PlanPrice;
}

export type UpgradeResult = { status: 'succeeded'; ref: string; amountCents: number } | { status: 'failed'; reason: string };

export interface PaymentProvider {
  readonly name: string;
  /** A one-off payment (a credit pack). */
  charge(req: ChargeRequest, key: string): Promise<ChargeResult>;
  /**
   * The same payment made off-session, with nobody present (auto top-up): charged to the
   * customer's saved payment method. A customer without one, or a payment that needs the
   * cardholder (authentication), is `failed`.
   */
  chargeSaved(req: ChargeRequest, key: string): Promise<ChargeResult>;
  /** Pays `amountCents` of the payment `ref` (a purchase's provider_ref) back. */
  refund(ref: string, amountCents: number, key: string): Promise<{ ref: string }>;
  subscribe(req: SubscribeRequest, key: string): Promise<SubscribeResult>;
  /** Closes an open checkout; false when it can no longer be closed (it was paid). */
  expireCheckout(checkoutRef: string): Promise<boolean>;
  /**
   * Moves the subscription to `price` now, charging the proration (the price difference × the
   * share of the period left) before answering; nothing changes when the payment is refused.
   * `resume`: the same update clears a cancellation scheduled at the period end.
   */
  upgrade(subscription: string, req: { purchaseId: string; price: PlanPrice; metadata: Record<string, string>; resume: boolean }, key: string): Promise<UpgradeResult>;
  /** Charges `price` from the next renewal on, without proration (a lower tier at the period end). */
  reprice(subscription: string, price: PlanPrice, key: string): Promise<void>;
  cancelAtPeriodEnd(subscription: string, cancel: boolean, key: string): Promise<void>;
  /** Ends the subscription at `at` (before its period end), without proration or a final invoice. */
  cancelAt(subscription: string, at: Date, key: string): Promise<void>;
  /** Ends the subscription now, without a final invoice; a subscription already gone is fine. */
  cancelNow(subscription: string, key: string): Promise<void>;
  /** Events that fell due at the provider by `now` and that it tells in-process (none for a provider with webhooks). */
  due(now: Date): Promise<ProviderEvent[]>;
  /** An event of `due` was applied here: the provider moves on. */
  delivered(event: ProviderEvent): Promise<void>;
}
