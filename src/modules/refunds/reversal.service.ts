/**
 * Money that went back to the buyer outside requestRefund: a refund made at the payment provider
 * (its dashboard) or a dispute. Called from PaymentEvents inside the transaction that records
 * the provider's event, under the account row lock (taken before the purchase's, as refunds do).
 *
 * - The purchase is the one whose provider_ref is the event's payment (a pack's payment intent)
 *   or its invoice (a plan purchase), when the event names one.
 * - A reversal withdraws the purchase's unspent credits (REVOCATION, whole lots: a partial refund
 *   at the provider withdraws all of them too — the credits are not split by the share of money
 *   refunded), marks the purchase REFUNDED (PARTIALLY_REFUNDED when the charge was refunded in
 *   part) or DISPUTED, sends PAYMENT_REVERSED, and ends the plan when it paid for the current
 *   period (as a refund does: an upgrade goes back to the tier the period was paid for).
 * - Once: the event id (PaymentEvents), and each effect keyed here — a refund by the charge's
 *   amount refunded in all (an event about a refund state already applied, or a refund we asked
 *   for, changes nothing), a dispute by its id (payment_reversals).
 * - A dispute won gives back, once, what it withdrew (the purchase's REVOCATION entries since the
 *   dispute opened, jobs refunded into its lots meanwhile included), lot by lot as new lots of the
 *   purchase (packs: PACK_PURCHASE; plan credits: ADJUSTMENT, expiring as the lot they came from;
 *   a lot whose expiry has passed gives nothing back), and the purchase is what it was before
 *   (COMPLETED), its 24-hour refund window closed. A plan ended by the dispute stays ended. A
 *   dispute lost changes nothing more; one lost that was never seen opened withdraws then.
 */
import type { Clock } from '../../common/clock';
import type { Tx } from '../../common/db/transaction';
import { PurchaseKind, PurchaseStatus, type PurchaseRow } from '../billing/purchase.type';
import type { PlanLifecycle } from '../billing/plans/plan-lifecycle';
import type { Tiers } from '../billing/plans/plan-policy';
import type { TierCode } from '../catalog/catalog.enums';
import { LedgerEntryKind, LotSource } from '../ledger/ledger.enums';
import type { LedgerService } from '../ledger/ledger.service';
import { keepNotice, purchaseName, refOf, type Notice } from '../notifications/notices';

/** Where a payment is named: its payment intent, and the invoice it paid when the event says. */
export interface PaymentRef {
  payment: string | null;
  invoice: string | null;
}

interface ReversalRow {
  id: string;
  purchase_id: string;
  account_id: string;
  status_before: PurchaseStatus;
  ledger_mark: string;
  outcome: 'WON' | 'LOST' | null;
}

/** Purchases whose money was taken here: the only ones that can come back. */
const PAID = [PurchaseStatus.COMPLETED, PurchaseStatus.PARTIALLY_REFUNDED, PurchaseStatus.REFUNDED, PurchaseStatus.DISPUTED];

export class ReversalService {
  constructor(
    private readonly clock: Clock,
    private readonly ledger: LedgerService,
    private readonly plans: PlanLifecycle,
    private readonly providerName: string,
  ) {}

  /**
   * The charge of a purchase was refunded (`amountRefunded` in all, of `amount`). Refunds we asked
   * for (APPROVED requests) and refund states already applied cover part of it; only money back
   * beyond them is a reversal.
   */
  async refunded(tx: Tx, ref: PaymentRef, amountRefunded: number, amount: number | null, tiers: Tiers): Promise<string | null> {
    const p = await this.lockedPurchase(tx, ref);
    if (!p) return null;
    const [covered] = await tx.query<{ ours: number; seen: number }>(
      `SELECT coalesce((SELECT sum(amount_cents) FROM refund_requests WHERE purchase_id = $1 AND status = 'APPROVED'), 0)::int AS ours,
              coalesce((SELECT max(amount_cents) FROM payment_reversals WHERE purchase_id = $1 AND reason = 'REFUND'), 0)::int AS seen`,
      [p.id],
    );
    if (amountRefunded <= Math.max(covered.ours, covered.seen)) return null;
    const full = amountRefunded >= (amount ?? p.amount_cents);
    const status = full || p.status === PurchaseStatus.REFUNDED ? PurchaseStatus.REFUNDED : PurchaseStatus.PARTIALLY_REFUNDED;
    const back = amountRefunded - Math.max(covered.ours, covered.seen);
    return this.reverse(tx, p, 'REFUND', `refunded:${amountRefunded}`, amountRefunded, status, tiers, (revoked) =>
      ({ template: 'refundedAtProvider', params: { purchase: refOf(p), cents: back, currency: p.currency, revoked } }));
  }

  /** The buyer disputed a purchase's payment: the money is with them while the dispute is open. */
  async disputed(tx: Tx, ref: PaymentRef, dispute: string, amount: number, tiers: Tiers): Promise<string | null> {
    const p = await this.lockedPurchase(tx, ref);
    if (!p || (await this.dispute(tx, dispute))) return null; // unknown, or this dispute was applied already
    // A purchase refunded already stays REFUNDED (nothing is left to withdraw).
    const status = p.status === PurchaseStatus.REFUNDED ? PurchaseStatus.REFUNDED : PurchaseStatus.DISPUTED;
    return this.reverse(tx, p, 'DISPUTE', dispute, amount, status, tiers, (revoked) =>
      ({ template: 'disputed', params: { purchase: refOf(p), revoked } }));
  }

  /** A dispute closed. Lost: the money stays with the buyer (withdrawn now, if its opening was never applied). Won: the credits come back, once. */
  async disputeClosed(tx: Tx, ref: PaymentRef, dispute: string, amount: number, won: boolean, tiers: Tiers): Promise<string | null> {
    const p = await this.lockedPurchase(tx, ref);
    let group: string | null = null;
    let r = await this.dispute(tx, dispute);
    if (!r) {
      if (won || !p) return null; // never opened here: nothing was withdrawn
      group = await this.disputed(tx, ref, dispute, amount, tiers);
      r = await this.dispute(tx, dispute);
      if (!r) return group;
    }
    if (r.outcome) return group; // closed already
    const now = this.clock.now();
    if (!won) {
      await tx.query(`UPDATE payment_reversals SET outcome = 'LOST', closed_at = $2 WHERE id = $1`, [r.id, now]);
      return group;
    }
    await tx.query('SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE', [r.account_id]);
    const [purchase] = await tx.query<{ status: PurchaseStatus }>('SELECT status FROM purchases WHERE id = $1 FOR UPDATE', [r.purchase_id]);
    let restored = 0;
    // Refunded meanwhile (no longer DISPUTED): the money went back after all, the credits stay withdrawn.
    if (purchase.status === PurchaseStatus.DISPUTED) {
      const taken = await tx.query<{ source: LotSource; expires_at: Date | null; credits: number }>(
        `SELECT l.source, l.expires_at, -sum(e.amount)::int AS credits
           FROM ledger_entries e JOIN credit_lots l ON l.id = e.lot_id
          WHERE e.account_id = $1 AND e.purchase_id = $2 AND e.kind = 'REVOCATION' AND e.id > $3
          GROUP BY l.id, l.source, l.expires_at, l.created_at ORDER BY l.created_at, l.id`,
        [r.account_id, r.purchase_id, r.ledger_mark],
      );
      for (const t of taken) {
        if (t.credits <= 0 || (t.expires_at && t.expires_at <= now)) continue; // it would have expired by now
        const given = await this.ledger.grant(tx, {
          accountId: r.account_id, amount: t.credits, kind: LedgerEntryKind.GRANT, purchaseId: r.purchase_id, expiresAt: t.expires_at,
          source: t.source === LotSource.PACK_PURCHASE ? LotSource.PACK_PURCHASE : LotSource.ADJUSTMENT,
          description: 'Dispute won: credits given back',
        });
        if (!given) throw new Error(`account ${r.account_id} vanished`);
        await tx.query('INSERT INTO payment_reversal_grants (entry_id, reversal_id) VALUES ($1, $2)', [given.entryId, r.id]);
        restored += t.credits;
      }
      // Its self-service refund window closes: the buyer took the money back through the bank once already.
      await tx.query('UPDATE purchases SET status = $2, refundable_until = LEAST(refundable_until, $3) WHERE id = $1', [r.purchase_id, r.status_before, now]);
    }
    await tx.query(`UPDATE payment_reversals SET outcome = 'WON', closed_at = $2, credits_restored = $3 WHERE id = $1`, [r.id, now, restored]);
    return group;
  }

  // ---- internals ----

  /** The paid purchase the payment names, with its account and itself locked (in that order). */
  private async lockedPurchase(tx: Tx, ref: PaymentRef): Promise<PurchaseRow | undefined> {
    const refs = [ref.invoice, ref.payment].filter((r): r is string => !!r);
    if (!refs.length) return undefined;
    const [found] = await tx.query<{ id: string; account_id: string }>(
      `SELECT id, account_id FROM purchases WHERE provider = $1 AND provider_ref = ANY($2) ORDER BY provider_ref = $3 DESC LIMIT 1`,
      [this.providerName, refs, ref.invoice],
    );
    if (!found) return undefined;
    await tx.query('SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE', [found.account_id]);
    const [p] = await tx.query<PurchaseRow>('SELECT * FROM purchases WHERE id = $1 FOR UPDATE', [found.id]);
    return PAID.includes(p.status) ? p : undefined; // never paid here: nothing to take back
  }

  private async dispute(tx: Tx, dispute: string): Promise<ReversalRow | undefined> {
    const [r] = await tx.query<ReversalRow>(
      `SELECT * FROM payment_reversals WHERE provider = $1 AND provider_ref = $2 AND reason = 'DISPUTE' FOR UPDATE`,
      [this.providerName, dispute],
    );
    return r;
  }

  /** Withdraws the purchase's unspent credits, marks it, records the reversal, notifies, ends the plan it paid for. */
  private async reverse(
    tx: Tx, p: PurchaseRow, reason: 'REFUND' | 'DISPUTE', providerRef: string, amountCents: number, status: PurchaseStatus, tiers: Tiers,
    notice: (revoked: number) => Notice,
  ): Promise<string | null> {
    const now = this.clock.now();
    const [mark] = await tx.query<{ id: string }>('SELECT coalesce(max(id), 0) AS id FROM ledger_entries WHERE account_id = $1', [p.account_id]);
    const taken = await tx.query<{ amount: number }>(
      `SELECT t.amount FROM credit_lots l, LATERAL ledger_take_lot(l.account_id, l.id, 'REVOCATION', $3, $2, NULL, $4) t
        WHERE l.purchase_id = $2 AND l.account_id = $1 AND l.remaining > 0`,
      [p.account_id, p.id, `${reason === 'REFUND' ? 'Refunded' : 'Disputed'} at the payment provider: the ${describe(p)}'s credits are withdrawn`, now],
    );
    const revoked = taken.reduce((sum, t) => sum + t.amount, 0);
    await tx.query('UPDATE purchases SET status = $2 WHERE id = $1', [p.id, status]);
    await tx.query(
      `INSERT INTO payment_reversals (provider, purchase_id, account_id, reason, provider_ref, amount_cents, status_before, credits_revoked, ledger_mark, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [this.providerName, p.id, p.account_id, reason, providerRef, amountCents, p.status, revoked, mark.id, now],
    );
    await keepNotice(tx, p.account_id, notice(revoked), now, { purchaseId: p.id });
    // A plan ends once: a purchase already REFUNDED or DISPUTED ended it then.
    if (p.kind !== PurchaseKind.PLAN || p.status === PurchaseStatus.REFUNDED || p.status === PurchaseStatus.DISPUTED) return null;
    return this.endPlan(tx, p, tiers, reason === 'DISPUTE');
  }

  /** When the purchase paid for the current period, the plan ends as a refund ends it (an upgrade: back to the paid tier). */
  private async endPlan(tx: Tx, p: PurchaseRow, tiers: Tiers, disputed: boolean): Promise<string | null> {
    const [a] = await tx.query<{ tier: TierCode; current_period_start: Date | null }>('SELECT tier, current_period_start FROM accounts WHERE id = $1', [p.account_id]);
    if (!a.current_period_start || !p.period_start || p.period_start < a.current_period_start) return null; // an earlier period's purchase
    const [previous] = await tx.query<{ tier: TierCode }>(
      `SELECT tier FROM purchases WHERE account_id = $1 AND kind = 'PLAN' AND status = 'COMPLETED' AND id <> $2
          AND period_start >= $3 ORDER BY created_at DESC, id DESC LIMIT 1`,
      [p.account_id, p.id, a.current_period_start],
    );
    const upgrade = !!previous && p.period_start > a.current_period_start;
    return this.plans.refunded(tx, p.account_id, upgrade ? 'upgrade' : 'plan', tiers, [], upgrade ? previous.tier : undefined, disputed);
  }
}

const describe = (p: PurchaseRow): string => purchaseName(refOf(p));
