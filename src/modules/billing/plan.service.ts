/**
 * Plans: FREE, CREATOR, PRO, MAX, billed MONTHLY or ANNUAL; the allowance is granted monthly
 * in both cases, as a MONTHLY_ALLOWANCE lot that expires at the end of its month.
 *
 * Proration rule (upgrades take effect at once): the charge is the difference of the two
 * prices for the current billing interval times the share of the billing period left (rounded
 * up to the cent); the credits are the difference of the two monthly allowances times the
 * share of the current allowance month left (rounded down), as an allowance lot expiring with
 * that month. From FREE (or a plan no longer active) a new period starts at once at full price.
 * A move to a lower tier, a change of interval, and a cancellation take effect at the period
 * end. At each period end (exactly once per account and period, whatever the number of
 * instances): the next period is charged and its first month's allowance granted (PLAN_RENEWED),
 * or, when the payment fails, the plan is PAST_DUE and no allowance comes until it is paid.
 */
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import { transaction, type Tx } from '../../common/db/transaction';
import { UserErrorCode } from '../../common/errors/user-error-code.enum';
import { BillingInterval, TierCode } from '../catalog/catalog.enums';
import type { CatalogService } from '../catalog/catalog.service';
import type { TierEntity } from '../catalog/tier.entity';
import { derivedId } from '../../common/ids';
import { isUniqueViolation } from '../../common/db/sql';
import type { Logger } from 'pino';
import { idempotent, KeyReused, keyReusedError, readRecord, replayOf, requestHash } from '../ledger/idempotency';
import { LedgerEntryKind, LotSource } from '../ledger/ledger.enums';
import type { BalanceSnapshot, LedgerService } from '../ledger/ledger.service';
import { REFUND_WINDOW_MS } from './billing.service';
import type { PaymentProvider } from './payment-provider';
import type { PurchaseRow } from './purchase.type';

/** `d` plus `n` calendar months (UTC), clamped to the month's last day. */
export function addMonths(d: Date, n: number): Date {
  const r = new Date(d.getTime());
  const day = r.getUTCDate();
  r.setUTCDate(1);
  r.setUTCMonth(r.getUTCMonth() + n);
  const last = new Date(Date.UTC(r.getUTCFullYear(), r.getUTCMonth() + 1, 0)).getUTCDate();
  r.setUTCDate(Math.min(day, last));
  return r;
}

/**
 * The allowance month after the one ending at `currentEnd`, inside a billing period: months are
 * counted from the period start (Jan 31, Feb 28, Mar 31, …), so a year has exactly twelve.
 */
export function nextAllowanceMonth(periodStart: Date, periodEnd: Date, currentEnd: Date): { start: Date; end: Date } {
  let k = 1;
  while (addMonths(periodStart, k) < currentEnd && k < 1200) k++;
  const end = addMonths(periodStart, k + 1);
  return { start: currentEnd, end: end < periodEnd ? end : periodEnd };
}

/** Ends the paid plan now: back to FREE, no period, nothing scheduled. */
export async function endPlan(tx: Tx, accountId: string): Promise<void> {
  await tx.query(
    `UPDATE accounts SET tier = 'FREE', billing_interval = NULL, plan_status = 'CANCELED', current_period_start = NULL, current_period_end = NULL,
            cancel_at_period_end = false, pending_tier = NULL, pending_interval = NULL, allowance_period_start = NULL, allowance_period_end = NULL
      WHERE id = $1`,
    [accountId],
  );
}

const monthsOf = (i: BillingInterval) => (i === BillingInterval.ANNUAL ? 12 : 1);
const priceOf = (t: TierEntity, i: BillingInterval) => (i === BillingInterval.ANNUAL ? t.annualPriceCents : t.monthlyPriceCents);

interface AccountPlanRow {
  id: string;
  tier: TierCode;
  billing_interval: BillingInterval | null;
  plan_status: 'ACTIVE' | 'CANCELED' | 'PAST_DUE';
  current_period_start: Date | null;
  current_period_end: Date | null;
  cancel_at_period_end: boolean;
  pending_tier: TierCode | null;
  pending_interval: BillingInterval | null;
  allowance_period_start: Date | null;
  allowance_period_end: Date | null;
}

export interface PlanOutcome {
  purchaseId?: string;
  balance?: BalanceSnapshot;
  error?: { code: UserErrorCode; message: string; field?: string[] };
}

export class PlanService {
  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly catalog: CatalogService,
    private readonly ledger: LedgerService,
    private readonly provider: PaymentProvider,
    private readonly log?: Logger,
  ) {}

  async changePlan(accountId: string, req: { tier: TierCode; interval: BillingInterval; idempotencyKey?: string | null }): Promise<PlanOutcome> {
    const input = { tier: req.tier, interval: req.interval };
    const reused: PlanOutcome = { error: keyReusedError() };
    const key = req.idempotencyKey ? { scope: accountId, key: req.idempotencyKey, operation: 'changePlan', hash: requestHash('changePlan', input) } : undefined;
    // A retry must not charge again: answer from the record before doing anything.
    if (key) {
      const first = await replayOf<PlanOutcome>(this.db, key).catch(() => undefined);
      if (first && !(first instanceof KeyReused)) return first;
      if (first instanceof KeyReused && (await readRecord(this.db, key.scope, key.key))) return reused;
    }
    // One purchase id per request (per key when there is one), so the provider charges once
    // even when the transaction is attempted again or a duplicate races this one.
    const purchaseId = key ? derivedId('changePlan', accountId, key.key) : randomUUID();
    try {
      const out = await idempotent<PlanOutcome, PlanOutcome>(
        this.db,
        { scope: accountId, key: req.idempotencyKey, operation: 'changePlan', input },
        () => this.clock.now(),
        async (tx) => {
          const result = await this.change(tx, accountId, req.tier, req.interval, purchaseId);
          return { result, store: result };
        },
      );
      if (out instanceof KeyReused) return reused;
      return 'fresh' in out ? out.fresh : out.stored;
    } catch (e) {
      // A concurrent duplicate committed this purchase first: answer with its record.
      if (key && isUniqueViolation(e, 'purchases_pkey')) {
        const first = await replayOf<PlanOutcome>(this.db, key);
        return first instanceof KeyReused ? reused : first;
      }
      throw e;
    }
  }

  async cancelPlan(accountId: string): Promise<PlanOutcome> {
    return transaction(this.db, async (tx) => {
      const a = await this.lock(tx, accountId);
      return this.scheduleCancel(tx, a);
    });
  }

  private async lock(tx: Tx, accountId: string): Promise<AccountPlanRow> {
    const [a] = await tx.query<AccountPlanRow>('SELECT * FROM accounts WHERE id = $1 FOR UPDATE', [accountId]);
    if (!a) throw new Error(`account ${accountId} does not exist`);
    return a;
  }

  private async change(tx: Tx, accountId: string, tier: TierCode, interval: BillingInterval, purchaseId: string): Promise<PlanOutcome> {
    const a = await this.lock(tx, accountId);
    if (tier === TierCode.FREE) return this.scheduleCancel(tx, a);
    const tiers = await this.catalog.tiers();
    const target = tiers.find((t) => t.code === tier)!;
    const current = tiers.find((t) => t.code === a.tier)!;
    const now = this.clock.now();
    if (a.tier === TierCode.FREE || a.plan_status !== 'ACTIVE') return this.startPeriod(tx, a, target, interval, now, purchaseId);
    if (a.tier === tier && a.billing_interval === interval) {
      if (!a.cancel_at_period_end && !a.pending_tier && !a.pending_interval) {
        return { error: { code: UserErrorCode.INVALID_STATE, message: `You are already on the ${target.name} plan, billed ${interval.toLowerCase()}` } };
      }
      await tx.query('UPDATE accounts SET cancel_at_period_end = false, pending_tier = NULL, pending_interval = NULL WHERE id = $1', [a.id]);
      return {};
    }
    if (target.rank > current.rank) return this.upgrade(tx, a, current, target, interval, now, purchaseId);
    // Lower tier or another interval: from the next period.
    await tx.query('UPDATE accounts SET pending_tier = $2, pending_interval = $3, cancel_at_period_end = false WHERE id = $1', [a.id, tier, interval]);
    return {};
  }

  private async scheduleCancel(tx: Tx, a: AccountPlanRow): Promise<PlanOutcome> {
    if (a.tier !== TierCode.FREE && a.plan_status === 'PAST_DUE') {
      // Unpaid: nothing left to run to; it ends now.
      await endPlan(tx, a.id);
      return {};
    }
    if (a.tier === TierCode.FREE || a.plan_status !== 'ACTIVE') {
      return { error: { code: UserErrorCode.INVALID_STATE, message: 'There is no paid plan to cancel' } };
    }
    await tx.query('UPDATE accounts SET cancel_at_period_end = true, pending_tier = NULL, pending_interval = NULL WHERE id = $1', [a.id]);
    return {};
  }

  /** A new billing period at full price, starting now, with its first month's allowance. */
  private async startPeriod(tx: Tx, a: AccountPlanRow, target: TierEntity, interval: BillingInterval, start: Date, purchaseId: string): Promise<PlanOutcome> {
    const end = addMonths(start, monthsOf(interval));
    const purchase = await this.charge(tx, purchaseId, a.id, target, interval, priceOf(target, interval), target.monthlyCredits, start, end,
      `${target.name} plan, ${interval.toLowerCase()}`);
    if ('error' in purchase) return purchase;
    const monthEnd = addMonths(start, 1) < end ? addMonths(start, 1) : end;
    await tx.query(
      `UPDATE accounts SET tier = $2, billing_interval = $3, plan_status = 'ACTIVE', current_period_start = $4, current_period_end = $5,
              cancel_at_period_end = false, pending_tier = NULL, pending_interval = NULL,
              allowance_period_start = $4, allowance_period_end = $6, low_credit_threshold = GREATEST(low_credit_threshold, $7)
        WHERE id = $1`,
      [a.id, target.code, interval, start, end, monthEnd, target.defaultLowCreditThreshold],
    );
    const balance = await this.grantAllowance(tx, a.id, target, start, monthEnd, purchase.id);
    await this.notify(tx, a.id, 'PURCHASE_COMPLETED', `Welcome to the ${target.name} plan: ${target.monthlyCredits} credits a month, ${target.queueClass.toLowerCase()} queue.`);
    return { purchaseId: purchase.id, balance };
  }

  private async upgrade(
    tx: Tx, a: AccountPlanRow, current: TierEntity, target: TierEntity, interval: BillingInterval, now: Date, purchaseId: string,
  ): Promise<PlanOutcome> {
    const billing = a.billing_interval!;
    const periodStart = a.current_period_start!.getTime();
    const periodEnd = a.current_period_end!.getTime();
    const periodLeft = Math.max(0, periodEnd - now.getTime()) / (periodEnd - periodStart);
    const amount = Math.ceil((priceOf(target, billing) - priceOf(current, billing)) * periodLeft);
    const monthStart = a.allowance_period_start!.getTime();
    const monthEnd = a.allowance_period_end!.getTime();
    const monthLeft = Math.max(0, monthEnd - now.getTime()) / (monthEnd - monthStart);
    const credits = Math.floor((target.monthlyCredits - current.monthlyCredits) * monthLeft);
    const purchase = await this.charge(tx, purchaseId, a.id, target, billing, Math.max(0, amount), Math.max(0, credits), now, a.current_period_end!,
      `Upgrade to ${target.name} for the rest of the period`);
    if ('error' in purchase) return purchase;
    await tx.query('UPDATE accounts SET tier = $2, pending_tier = NULL, pending_interval = $3, cancel_at_period_end = false WHERE id = $1', [
      a.id,
      target.code,
      interval !== billing ? interval : null,
    ]);
    let balance: BalanceSnapshot | undefined;
    if (credits > 0) {
      const g = await this.ledger.grant(tx, {
        accountId: a.id, amount: credits, source: LotSource.MONTHLY_ALLOWANCE, kind: LedgerEntryKind.GRANT,
        description: `Upgrade to ${target.name}: ${credits} more credits for the rest of this month`, expiresAt: a.allowance_period_end, purchaseId: purchase.id,
      });
      balance = g?.balance;
    }
    await this.notify(tx, a.id, 'PURCHASE_COMPLETED', `You are on the ${target.name} plan now: ${credits} more credits for this month.`);
    return { purchaseId: purchase.id, balance: balance ?? (await this.ledger.balance(a.id, tx)) };
  }

  /** Charges through the provider and keeps the purchase (COMPLETED), or says why not (nothing kept). */
  private async charge(
    tx: Tx, id: string, accountId: string, tier: TierEntity, interval: BillingInterval, amountCents: number, credits: number,
    periodStart: Date, periodEnd: Date, description: string,
  ): Promise<PurchaseRow | { error: PlanOutcome['error'] }> {
    const now = this.clock.now();
    let ref: string | null = null;
    if (amountCents > 0) {
      const r = await this.provider.charge({ purchaseId: id, accountId, amountCents, currency: tier.currency, description });
      if (r.status === 'failed') return { error: { code: UserErrorCode.PAYMENT_FAILED, message: `The payment failed: ${r.reason}` } };
      if (r.status === 'pending') return { error: { code: UserErrorCode.PAYMENT_FAILED, message: 'This provider needs a checkout for plans; not supported yet' } };
      ref = r.ref;
    }
    const [row] = await tx.query<PurchaseRow>(
      `INSERT INTO purchases (id, account_id, kind, status, tier, billing_interval, credits, amount_cents, currency, provider, provider_ref,
                              created_at, completed_at, refundable_until, period_start, period_end)
       VALUES ($1, $2, 'PLAN', 'COMPLETED', $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13) RETURNING *`,
      [id, accountId, tier.code, interval, credits, amountCents, tier.currency, this.provider.name, ref, now, new Date(now.getTime() + REFUND_WINDOW_MS), periodStart, periodEnd],
    );
    return row;
  }

  /** The allowance of one month, once per account and month (the grant record's key). */
  private async grantAllowance(tx: Tx, accountId: string, tier: TierEntity, start: Date, end: Date, purchaseId: string | null): Promise<BalanceSnapshot | undefined> {
    const inserted = await tx.query(
      `INSERT INTO allowance_grants (account_id, period_start, period_end, tier, credits, purchase_id, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING 1`,
      [accountId, start, end, tier.code, tier.monthlyCredits, purchaseId, this.clock.now()],
    );
    // A month that already ended (renewals caught up after downtime) is recorded but grants nothing.
    if (!inserted.length || tier.monthlyCredits === 0 || end <= this.clock.now()) return this.ledger.balance(accountId, tx);
    const g = await this.ledger.grant(tx, {
      accountId, amount: tier.monthlyCredits, source: LotSource.MONTHLY_ALLOWANCE, kind: LedgerEntryKind.GRANT,
      description: `${tier.name} plan: ${tier.monthlyCredits} credits for the month from ${start.toISOString().slice(0, 10)}`, expiresAt: end, purchaseId,
    });
    return g?.balance;
  }

  /**
   * A month of the FREE tier's own allowance (when the catalog gives FREE monthly credits),
   * starting at `start`; it renews like a paid plan's, without a charge.
   */
  async freeMonth(tx: Tx, accountId: string, free: TierEntity, start: Date): Promise<void> {
    const end = addMonths(start, 1);
    await tx.query(
      `UPDATE accounts SET allowance_period_start = $2, allowance_period_end = $3, plan_status = 'ACTIVE' WHERE id = $1 AND tier = 'FREE'`,
      [accountId, start, end],
    );
    await this.grantAllowance(tx, accountId, free, start, end, null);
  }

  private async notify(tx: Tx, accountId: string, kind: string, message: string): Promise<void> {
    await tx.query('INSERT INTO notifications (account_id, kind, message, created_at) VALUES ($1, $2, $3, $4)', [accountId, kind, message, this.clock.now()]);
  }

  /**
   * Runs what fell due: new allowance months inside billing periods, and period ends (renew,
   * switch, or end the plan). Each account is taken with SKIP LOCKED and re-checked under its
   * lock, and each month's grant is keyed, so every instance may run this at once.
   */
  async renewDue(): Promise<number> {
    let done = 0;
    const failed = new Set<string>();
    for (let round = 0; round < 1000; round++) {
      const now = this.clock.now();
      const due = (await this.db.query(
        `SELECT id FROM accounts WHERE plan_status = 'ACTIVE' AND (current_period_end <= $1 OR allowance_period_end <= $1)
          ORDER BY least(current_period_end, allowance_period_end) LIMIT 200`,
        [now],
      )) as { id: string }[];
      let progressed = 0;
      for (const { id } of due) {
        if (failed.has(id)) continue;
        try {
          // One account per transaction: a failure stays with its account.
          const stepped = await transaction(this.db, async (tx) => {
            const [a] = await tx.query<AccountPlanRow>(
              `SELECT * FROM accounts WHERE id = $1 AND plan_status = 'ACTIVE' AND (current_period_end <= $2 OR allowance_period_end <= $2)
                FOR UPDATE SKIP LOCKED`,
              [id, now],
            );
            if (!a) return false;
            await this.advance(tx, a, now);
            return true;
          });
          if (stepped) progressed++;
        } catch (e) {
          failed.add(id);
          this.log?.error({ err: e, account: id }, 'renewal step failed; the account is retried on the next run');
        }
      }
      done += progressed;
      if (progressed === 0) break;
    }
    return done;
  }

  /** One step for one account: the next allowance month, or the period end. */
  private async advance(tx: Tx, a: AccountPlanRow, now: Date): Promise<void> {
    const tiers = await this.catalog.tiers();
    const tier = tiers.find((t) => t.code === a.tier)!;
    if (!a.current_period_end) {
      // FREE with monthly credits in the catalog: a new month, no billing period.
      if (!a.allowance_period_end || a.allowance_period_end > now) return;
      await this.freeMonth(tx, a.id, tier, a.allowance_period_end);
      return;
    }
    const periodEnd = a.current_period_end;
    if (a.allowance_period_end! < periodEnd && a.allowance_period_end! <= now) {
      const { start, end } = nextAllowanceMonth(a.current_period_start!, periodEnd, a.allowance_period_end!);
      await tx.query('UPDATE accounts SET allowance_period_start = $2, allowance_period_end = $3 WHERE id = $1', [a.id, start, end]);
      // Months inside a billing period belong to the purchase that paid for it (a refund withdraws them).
      const [first] = await tx.query<{ purchase_id: string | null }>(
        'SELECT purchase_id FROM allowance_grants WHERE account_id = $1 AND period_start = $2',
        [a.id, a.current_period_start],
      );
      await this.grantAllowance(tx, a.id, tier, start, end, first?.purchase_id ?? null);
      return;
    }
    if (periodEnd > now) return;
    if (a.cancel_at_period_end) {
      await endPlan(tx, a.id);
      const free = tiers.find((t) => t.code === TierCode.FREE)!;
      if (free.monthlyCredits > 0) await this.freeMonth(tx, a.id, free, periodEnd);
      await this.notify(tx, a.id, 'PLAN_RENEWED', `Your ${tier.name} plan ended as you asked; you are on the Free plan now.`);
      return;
    }
    const next = tiers.find((t) => t.code === (a.pending_tier ?? a.tier))!;
    const interval = a.pending_interval ?? a.billing_interval!;
    const start = periodEnd;
    const end = addMonths(start, monthsOf(interval));
    const purchase = await this.charge(tx, derivedId('renewal', a.id, start.toISOString()), a.id, next, interval, priceOf(next, interval), next.monthlyCredits, start, end,
      `${next.name} plan renewal, ${interval.toLowerCase()}`);
    if ('error' in purchase) {
      await tx.query(`UPDATE accounts SET plan_status = 'PAST_DUE' WHERE id = $1`, [a.id]);
      return;
    }
    const monthEnd = addMonths(start, 1) < end ? addMonths(start, 1) : end;
    await tx.query(
      `UPDATE accounts SET tier = $2, billing_interval = $3, current_period_start = $4, current_period_end = $5, pending_tier = NULL,
              pending_interval = NULL, allowance_period_start = $4, allowance_period_end = $6 WHERE id = $1`,
      [a.id, next.code, interval, start, end, monthEnd],
    );
    await this.grantAllowance(tx, a.id, next, start, monthEnd, purchase.id);
    await this.notify(tx, a.id, 'PLAN_RENEWED', `Your ${next.name} plan renewed: ${next.monthlyCredits} fresh credits; unused ones from last month expired.`);
  }
}
