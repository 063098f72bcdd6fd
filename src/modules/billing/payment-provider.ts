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

  async charge(req: ChargeRequest): Promise<ChargeResult> {
    const existing = this.charges.get(req.purchaseId);
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
