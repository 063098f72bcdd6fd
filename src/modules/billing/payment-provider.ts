/**
 * Payment providers behind one interface. `sandbox` (the default) succeeds at once and records
 * nothing outside this service; every charge carries the purchase id as its idempotency key,
 * so a repeated charge of one purchase is one charge at the provider.
 */
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
