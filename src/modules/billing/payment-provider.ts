/**
 * Payment providers behind one interface. `sandbox` (the default) succeeds at once and records
 * nothing outside this service; every charge carries the purchase id as its idempotency key,
 * so a repeated charge of one purchase is one charge at the provider.
 */
import type { PlanPrice } from './plan-price';

export type { PlanPrice } from './plan-price';

export type ChargeResult =
  | { status: 'succeeded'; ref: string }
  | { status: 'pending'; ref: string; checkoutUrl: string }
  | { status: 'failed'; reason: string };

export interface ChargeRequest {
  purchaseId: string;
  accountId: string;
  amountCents: number;
  currency: string;
  description: string;
}

export interface PaymentProvider {
  readonly name: string;
  charge(req: ChargeRequest): Promise<ChargeResult>;
  refund(ref: string, amountCents: number): Promise<{ ref: string }>;
  /**
   * Present when the provider bills plans itself as subscriptions (Stripe): plans then start on
   * its checkout, renew on its invoices, and are never charged by the service's renewal sweep.
   */
  readonly subscriptions?: SubscriptionGateway;
}


export type UpgradeResult = { status: 'succeeded'; ref: string; amountCents: number } | { status: 'failed'; reason: string };

/** The provider's side of plans billed as subscriptions. `subscription` is the provider's id. */
export interface SubscriptionGateway {
  /** Opens a checkout for a new subscription (pending) — the plan starts on the provider's webhook. */
  checkout(req: { purchaseId: string; accountId: string; customerRef: string | null; price: PlanPrice }): Promise<ChargeResult>;
  /** Closes an open checkout; false when it can no longer be closed (it was paid). */
  expireCheckout(checkoutRef: string): Promise<boolean>;
  /**
   * Moves the subscription to `price` now, invoicing the provider's proration at once and
   * collecting it before answering; nothing changes at the provider when the payment fails.
   * `resume`: the same update also clears a cancellation scheduled at the period end.
   * `failed` only when the payment was refused; throws when the outcome is unknown (network, 5xx).
   */
  upgrade(subscription: string, req: { purchaseId: string; price: PlanPrice; metadata: Record<string, string>; resume?: boolean }): Promise<UpgradeResult>;
  /** Charges `price` from the next renewal on, without proration (a lower tier at the period end). */
  reprice(subscription: string, price: PlanPrice): Promise<void>;
  cancelAtPeriodEnd(subscription: string, cancel: boolean): Promise<void>;
  /** Ends the subscription at `at` (before its period end), without proration or a final invoice. */
  cancelAt(subscription: string, at: Date): Promise<void>;
  /** Ends the subscription now, without a final invoice; a subscription already gone is fine. */
  cancelNow(subscription: string): Promise<void>;
}

export class SandboxProvider implements PaymentProvider {
  readonly name = 'sandbox';
  /** Charges by purchase id: a second charge of one purchase returns the first. */
  readonly charges = new Map<string, ChargeRequest & { ref: string }>();
  readonly refunds: { ref: string; amountCents: number }[] = [];
  private failures: { reason: string; accountId?: string }[] = [];

  /** Tests and demos: the next `n` new charges (of one account, if given) fail with `reason`. */
  failNext(n: number, reason = 'card declined', accountId?: string): void {
    this.failures.push(...Array.from({ length: n }, () => ({ reason, accountId })));
  }

  async charge(req: ChargeRequest): Promise<ChargeResult> {
    const existing = this.charges.get(req.purchaseId);
    const failure = existing ? -1 : this.failures.findIndex((f) => !f.accountId || f.accountId === req.accountId);
    if (failure >= 0) return { status: 'failed', reason: this.failures.splice(failure, 1)[0].reason };
    if (existing) return { status: 'succeeded', ref: existing.ref };
    const ref = `sandbox_${req.purchaseId}`;
    this.charges.set(req.purchaseId, { ...req, ref });
    return { status: 'succeeded', ref };
  }

  async refund(ref: string, amountCents: number): Promise<{ ref: string }> {
    this.refunds.push({ ref, amountCents });
    return { ref: `sandbox_refund_${this.refunds.length}` };
  }
}
