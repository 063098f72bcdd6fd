/**
 * The `sandbox` payment provider (development and tests; production refuses it): a provider like
 * Stripe that answers at once, in-process, and keeps a working saved card for every account (so
 * off-session payments work). Payments always succeed (unless a test asks for
 * failures with `failNext`); subscriptions renew on their own at their period end (`due`, run
 * with the service's timed work), a failed renewal makes them PAST_DUE, a cancellation ends them.
 * Its side lives in its own tables, keyed by idempotency key as Stripe is: a call repeated with
 * its key is one payment, across restarts.
 */
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import type { BillingInterval } from '../catalog/catalog.enums';
import { monthsOf, nextAnchored, periodEnd } from './plans/plan-calendar';
import { prorationCents, type PlanPrice } from './plans/plan-price';
import type { ChargeRequest, ChargeResult, PaymentProvider, SubscribeRequest, SubscribeResult, UpgradeResult } from './payment-provider';
import type { ProviderEvent } from './provider-events';

interface SandboxSubscription {
  id: string;
  account_id: string;
  amount_cents: number;
  currency: string;
  billing_interval: 'MONTHLY' | 'ANNUAL';
  name: string;
  period_start: Date;
  period_end: Date;
  cancel_at_period_end: boolean;
  cancel_at: Date | null;
  status: 'ACTIVE' | 'PAST_DUE' | 'CANCELED';
  created_at: Date;
}

export class SandboxProvider implements PaymentProvider {
  readonly name = 'sandbox';
  /** New payments this process made, by idempotency key (for tests and demos to look at). */
  readonly charges = new Map<string, { accountId: string; amountCents: number; description: string; ref: string }>();
  /** New refunds this process made. */
  readonly refunds: { ref: string; amountCents: number }[] = [];
  private failures: { reason: string; accountId?: string }[] = [];

  constructor(private readonly db: DataSource, private readonly clock: Clock) {}

  /** Tests and demos: the next `n` new payments (of one account, if given) fail with `reason`. */
  failNext(n: number, reason = 'card declined', accountId?: string): void {
    this.failures.push(...Array.from({ length: n }, () => ({ reason, accountId })));
  }

  async charge(req: ChargeRequest, key: string): Promise<ChargeResult> {
    const done = await this.payment(key);
    if (done) return { status: 'succeeded', ref: done.ref };
    const failed = this.failure(req.accountId);
    if (failed) return { status: 'failed', reason: failed };
    const ref = await this.pay(key, 'charge', req.accountId, req.amountCents, req.description, `sandbox_${req.purchaseId}`);
    return { status: 'succeeded', ref };
  }

  /** The sandbox keeps a working card for everyone: off-session payments are made like the others (failNext fails them too). */
  async chargeSaved(req: ChargeRequest, key: string): Promise<ChargeResult> {
    return this.charge(req, key);
  }

  async refund(ref: string, amountCents: number, key: string): Promise<{ ref: string }> {
    const done = await this.payment(key);
    if (done) return { ref: done.ref };
    const [row] = (await this.db.query(
      `INSERT INTO sandbox_payments (key, kind, ref, account_id, amount_cents, description, created_at)
       VALUES ($1, 'refund', 'sandbox_refund_' || md5($1), NULL, $2, $3, $4) ON CONFLICT (key) DO NOTHING RETURNING ref`,
      [key, amountCents, `refund of ${ref}`, this.clock.now()],
    )) as { ref: string }[];
    if (row) this.refunds.push({ ref, amountCents });
    return { ref: row?.ref ?? (await this.payment(key))!.ref };
  }

  async subscribe(req: SubscribeRequest, key: string): Promise<SubscribeResult> {
    const id = `sandbox_sub_${req.purchaseId}`;
    const paid = (ref: string): SubscribeResult => ({ status: 'paid', subscription: id, customer: `sandbox_cus_${req.accountId}`, invoice: ref, amountCents: req.price.amountCents });
    const done = await this.payment(key);
    if (done) return paid(done.ref);
    const failed = this.failure(req.accountId);
    if (failed) return { status: 'failed', reason: failed };
    const now = this.clock.now();
    await this.db.query(
      `INSERT INTO sandbox_subscriptions (id, account_id, amount_cents, currency, billing_interval, name, period_start, period_end, status, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'ACTIVE', $7) ON CONFLICT (id) DO NOTHING`,
      [id, req.accountId, req.price.amountCents, req.price.currency, req.price.interval, req.price.name, now, periodEnd(now, req.price.interval as BillingInterval)],
    );
    return paid(await this.pay(key, 'subscription', req.accountId, req.price.amountCents, `${req.price.name}, first period`, `sandbox_${req.purchaseId}`));
  }

  async expireCheckout(): Promise<boolean> {
    return true; // the sandbox never leaves a checkout open
  }

  async upgrade(subscription: string, req: { purchaseId: string; price: PlanPrice; resume: boolean }, key: string): Promise<UpgradeResult> {
    const done = await this.payment(key);
    if (done) return { status: 'succeeded', ref: done.ref, amountCents: done.amount_cents };
    const sub = await this.subscription(subscription);
    const failed = this.failure(sub.account_id);
    if (failed) return { status: 'failed', reason: failed };
    // Stripe's proration, as the preview shows it: the price difference × the share of the period left, to the cent above.
    const amount = prorationCents(sub.amount_cents, req.price.amountCents, sub.period_start, sub.period_end, this.clock.now());
    const ref = await this.pay(key, 'upgrade', sub.account_id, amount, `${req.price.name}, upgrade for the rest of the period`, `sandbox_${req.purchaseId}`);
    await this.db.query(
      `UPDATE sandbox_subscriptions SET amount_cents = $2, name = $3, cancel_at_period_end = cancel_at_period_end AND NOT $4 WHERE id = $1`,
      [subscription, req.price.amountCents, req.price.name, req.resume],
    );
    return { status: 'succeeded', ref, amountCents: amount };
  }

  async reprice(subscription: string, price: PlanPrice): Promise<void> {
    await this.db.query(`UPDATE sandbox_subscriptions SET amount_cents = $2, currency = $3, billing_interval = $4, name = $5 WHERE id = $1`, [
      subscription, price.amountCents, price.currency, price.interval, price.name,
    ]);
  }

  async cancelAtPeriodEnd(subscription: string, cancel: boolean): Promise<void> {
    await this.db.query(`UPDATE sandbox_subscriptions SET cancel_at_period_end = $2 WHERE id = $1`, [subscription, cancel]);
  }

  async cancelAt(subscription: string, at: Date): Promise<void> {
    await this.db.query(`UPDATE sandbox_subscriptions SET cancel_at = $2 WHERE id = $1`, [subscription, at]);
  }

  async cancelNow(subscription: string): Promise<void> {
    await this.db.query(`UPDATE sandbox_subscriptions SET status = 'CANCELED' WHERE id = $1`, [subscription]);
  }

  /**
   * What fell due by `now`: a subscription past its end (cancelled at the period end, or at a
   * set time) ends; one past its period end renews — its renewal is paid (once per period, by
   * key) or fails. Each event has an id of its own, so delivering it again changes nothing.
   */
  async due(now: Date): Promise<ProviderEvent[]> {
    const subs = (await this.db.query(
      `SELECT * FROM sandbox_subscriptions WHERE status = 'ACTIVE' AND (period_end <= $1 OR cancel_at <= $1) ORDER BY period_end LIMIT 200`,
      [now],
    )) as SandboxSubscription[];
    const events: ProviderEvent[] = [];
    for (const s of subs) {
      const end = s.period_end.toISOString();
      if ((s.cancel_at && s.cancel_at <= now) || s.cancel_at_period_end) {
        events.push({ id: `sandbox_evt_end_${s.id}`, type: 'subscription.ended', subscription: s.id });
        continue;
      }
      const key = `sandbox-renewal-${s.id}-${end}`;
      const invoice = { id: `sandbox_in_${s.id}_${end}`, subscription: s.id, rawReason: 'subscription_cycle', currency: s.currency, metadata: { periodEnd: end } };
      const done = await this.payment(key);
      const failed = done ? undefined : this.failure(s.account_id);
      if (failed) {
        events.push({ id: `sandbox_evt_fail_${s.id}_${end}`, type: 'invoice.failed', invoice: { ...invoice, reason: 'renewal', amountPaid: 0 } });
        continue;
      }
      const ref = done?.ref ?? (await this.pay(key, 'renewal', s.account_id, s.amount_cents, `${s.name} renewal`, invoice.id));
      events.push({ id: `sandbox_evt_paid_${s.id}_${end}`, type: 'invoice.paid', invoice: { ...invoice, id: ref, reason: 'renewal', amountPaid: s.amount_cents } });
    }
    return events;
  }

  async delivered(e: ProviderEvent): Promise<void> {
    if (e.type === 'subscription.ended') {
      await this.db.query(`UPDATE sandbox_subscriptions SET status = 'CANCELED' WHERE id = $1`, [e.subscription]);
    } else if (e.type === 'invoice.failed') {
      await this.db.query(`UPDATE sandbox_subscriptions SET status = 'PAST_DUE' WHERE id = $1 AND status = 'ACTIVE'`, [e.invoice.subscription]);
    } else if (e.type === 'invoice.paid' && e.invoice.metadata.periodEnd) {
      const s = await this.subscription(e.invoice.subscription);
      const start = new Date(e.invoice.metadata.periodEnd);
      // Periods end on the subscription's own day (it began at created_at), as Stripe's billing anchor.
      await this.db.query(`UPDATE sandbox_subscriptions SET period_start = $2, period_end = $3 WHERE id = $1 AND period_end = $2`, [
        s.id, start, nextAnchored(s.created_at, start, monthsOf(s.billing_interval as BillingInterval)),
      ]);
    }
  }

  private failure(accountId: string): string | undefined {
    const i = this.failures.findIndex((f) => !f.accountId || f.accountId === accountId);
    return i >= 0 ? this.failures.splice(i, 1)[0].reason : undefined;
  }

  private async payment(key: string): Promise<{ ref: string; amount_cents: number } | undefined> {
    const [row] = (await this.db.query('SELECT ref, amount_cents FROM sandbox_payments WHERE key = $1', [key])) as { ref: string; amount_cents: number }[];
    return row;
  }

  /** Records a payment once per key; the ref of the one recorded. */
  private async pay(key: string, kind: string, accountId: string, amountCents: number, description: string, ref: string): Promise<string> {
    const [row] = (await this.db.query(
      `INSERT INTO sandbox_payments (key, kind, ref, account_id, amount_cents, description, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key) DO NOTHING RETURNING ref`,
      [key, kind, ref, accountId, amountCents, description, this.clock.now()],
    )) as { ref: string }[];
    if (row) this.charges.set(key, { accountId, amountCents, description, ref });
    return row?.ref ?? (await this.payment(key))!.ref;
  }

  private async subscription(id: string): Promise<SandboxSubscription> {
    const [s] = (await this.db.query('SELECT * FROM sandbox_subscriptions WHERE id = $1', [id])) as SandboxSubscription[];
    if (!s) throw new Error(`sandbox subscription ${id} does not exist`);
    return s;
  }
}
