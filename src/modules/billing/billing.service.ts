/**
 * Buying credit packs, as a payment intent: the purchase (PENDING), its idempotency record and
 * the intent to charge are committed first; the provider is charged after commit with the
 * purchase's key (`purchase-<id>`), holding no lock; the answer completes the purchase in one
 * transaction — COMPLETED, a PACK_PURCHASE lot that never expires, the GRANT entry linked to the
 * purchase, a PURCHASE_COMPLETED notification — or marks it FAILED. A retry or a concurrent
 * duplicate with the same key finds the record and drives the same intent, so a key charges
 * once; a crash between the steps is finished by the retry or by the reconciler.
 */
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import { transaction, type Tx } from '../../common/db/transaction';
import { isUuid } from '../../common/ids';
import { UserErrorCode } from '../../common/errors/user-error-code.enum';
import type { CatalogService } from '../catalog/catalog.service';
import { keyed, keyFor } from '../../common/idempotency/idempotency';
import { LedgerEntryKind, LotSource } from '../ledger/ledger.enums';
import { keepNotice } from '../notifications/notices';
import type { BalanceSnapshot, LedgerService } from '../ledger/ledger.service';
import { refusedOr, type IntentRow, type PaymentIntents, type Refused } from './payment-intents';
import { autoTopUpCompleted, autoTopUpFailed } from './auto-top-up/auto-top-up-settle';
import type { CreditPackEntity } from '../catalog/credit-pack.entity';
import { awaitCheckout, failPending } from './purchase-writes';
import type { ChargeRequest, ChargeResult, PaymentProvider } from './payment-provider';
import { REFUND_WINDOW_MS } from './plans/plan-store';
import { PurchaseStatus, type PurchaseRow } from './purchase.type';

export interface PurchaseOutcome {
  purchase?: PurchaseRow;
  checkoutUrl?: string | null;
  balance?: BalanceSnapshot;
  error?: { code: UserErrorCode; message: string; field?: string[] };
}

/** What a keyed purchase keeps: the purchase and the group of its charge intent. */
export interface Kept {
  purchaseId: string;
  groupId: string;
}

export class BillingService {
  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly catalog: CatalogService,
    private readonly ledger: LedgerService,
    private readonly provider: PaymentProvider,
    private readonly intents: PaymentIntents,
  ) {
    // A pack bought by a person (a checkout page at Stripe) or by auto top-up (off-session): one completion.
    const complete = async (tx: Tx, i: IntentRow, result: unknown): Promise<void> => {
      const purchaseId = i.payload.purchaseId as string;
      if ('refused' in (result as object)) return this.failIn(tx, purchaseId, (result as Refused).refused);
      const r = result as Exclude<ChargeResult, { status: 'failed' }>;
      if (r.status === 'pending') return awaitCheckout(tx, purchaseId, r.ref, r.checkoutUrl);
      await this.completeIn(tx, i.account_id, purchaseId, r.ref);
    };
    intents.register('pack.charge', { call: async (i) => refusedOr(await provider.charge(i.payload.charge as never, i.payload.key)), complete });
    intents.register('pack.charge_saved', { call: async (i) => refusedOr(await provider.chargeSaved(i.payload.charge as never, i.payload.key)), complete });
  }

  async purchasePack(accountId: string, req: { packCode: string; idempotencyKey?: string | null }): Promise<PurchaseOutcome> {
    const pack = (await this.catalog.packs()).find((p) => p.code === req.packCode);
    if (!pack) {
      return { error: { code: UserErrorCode.NOT_FOUND, message: `No credit pack "${req.packCode}" is on sale; see creditPacks`, field: ['input', 'packCode'] } };
    }
    const key = keyFor(accountId, req.idempotencyKey, 'purchaseCreditPack', { packCode: pack.code });
    // Kept under the key: the purchase and its charge, so a retry drives that same charge.
    return keyed<Kept, PurchaseOutcome>(this.db, key, () => this.clock.now(), {
      work: (tx) => this.recordPack(tx, accountId, pack, false),
      answer: async (fresh) => {
        await this.intents.runGroup(fresh.groupId);
        return this.answer(accountId, fresh.purchaseId);
      },
      replay: async (kept) => {
        if (kept.groupId) await this.intents.runGroup(kept.groupId, { takeover: true });
        return this.answer(accountId, kept.purchaseId);
      },
    });
  }

  /**
   * A PENDING purchase of `pack` and the intent to charge it, in the caller's transaction; the
   * charge is made after commit (runGroup). `automatic`: auto top-up's, charged off-session to
   * the saved payment method; otherwise the provider may send the buyer to a checkout page
   * (which saves the card for later off-session payments).
   */
  async recordPack(tx: Tx, accountId: string, pack: CreditPackEntity, automatic: boolean): Promise<Kept> {
    const id = randomUUID();
    await tx.query(
      `INSERT INTO purchases (id, account_id, kind, status, pack_code, credits, amount_cents, currency, provider, automatic, created_at)
       VALUES ($1, $2, 'CREDIT_PACK', 'PENDING', $3, $4, $5, $6, $7, $8, $9)`,
      [id, accountId, pack.code, pack.credits, pack.priceCents, pack.currency, this.provider.name, automatic, this.clock.now()],
    );
    const [account] = await tx.query<{ customer_ref: string | null }>('SELECT customer_ref FROM accounts WHERE id = $1', [accountId]);
    const charge: ChargeRequest = {
      purchaseId: id, accountId, amountCents: pack.priceCents, currency: pack.currency.trim(), description: `${pack.credits} credits (${pack.code} pack)`, customerRef: account?.customer_ref ?? null,
    };
    const groupId = await this.intents.record(tx, accountId, [{ kind: automatic ? 'pack.charge_saved' : 'pack.charge', payload: { key: `purchase-${id}`, purchaseId: id, charge: { ...charge } } }]);
    return { purchaseId: id, groupId };
  }

  /** Where a purchase stands, as the mutation answers it. */
  private async answer(accountId: string, purchaseId: string): Promise<PurchaseOutcome> {
    const purchase = await this.get(accountId, purchaseId);
    if (!purchase) throw new Error(`purchase ${purchaseId} vanished`);
    const balance = await this.ledger.balance(accountId);
    if (purchase.status === PurchaseStatus.FAILED) {
      return { purchase, balance, error: { code: UserErrorCode.PAYMENT_FAILED, message: `The payment failed: ${purchase.failure_reason}` } };
    }
    return { purchase, balance, checkoutUrl: purchase.status === PurchaseStatus.PENDING ? purchase.checkout_url : null };
  }

  /** PENDING → COMPLETED with its credits, once. */
  async complete(accountId: string, purchaseId: string, providerRef: string): Promise<PurchaseOutcome> {
    return transaction(this.db, (tx) => this.completeIn(tx, accountId, purchaseId, providerRef));
  }

  /**
   * The same, inside the caller's transaction (the webhook records its event in it too). The
   * provider's word that it was paid also completes a purchase marked FAILED here (a checkout we
   * gave up on too early), with `paidAtProvider`.
   */
  async completeIn(tx: Tx, accountId: string, purchaseId: string, providerRef: string, paidAtProvider = false): Promise<PurchaseOutcome> {
    {
      const now = this.clock.now();
      const [row] = await tx.query<PurchaseRow>(
        `UPDATE purchases SET status = 'COMPLETED', completed_at = $3, refundable_until = $4, provider_ref = $5, failure_reason = NULL
          WHERE id = $1 AND account_id = $2 AND (status = 'PENDING' OR ($6 AND status = 'FAILED')) RETURNING *`,
        [purchaseId, accountId, now, new Date(now.getTime() + REFUND_WINDOW_MS), providerRef, paidAtProvider],
      );
      if (!row) {
        const current = await tx.query<PurchaseRow>('SELECT * FROM purchases WHERE id = $1', [purchaseId]);
        return { purchase: current[0], balance: await this.ledger.balance(accountId, tx) };
      }
      const granted = await this.ledger.grant(tx, {
        accountId,
        amount: row.credits,
        source: LotSource.PACK_PURCHASE,
        kind: LedgerEntryKind.GRANT,
        description: `Credit pack ${row.pack_code}: ${row.credits} credits`,
        purchaseId,
      });
      if (!granted) throw new Error(`account ${accountId} vanished`);
      if (row.automatic) await autoTopUpCompleted(tx, row, now);
      else await keepNotice(tx, accountId, { template: 'packPurchased', params: { pack: row.pack_code!, credits: row.credits } }, now, { purchaseId });
      return { purchase: row, balance: granted.balance };
    }
  }

  /** PENDING → FAILED (a checkout that expired or whose payment failed), inside the caller's transaction; auto top-up counts its failures. */
  async failIn(tx: Tx, purchaseId: string, reason: string): Promise<void> {
    const failed = await failPending(tx, purchaseId, reason);
    if (failed?.automatic) await autoTopUpFailed(tx, failed, reason, this.clock.now());
  }

  /** A keyed request seen before: the first one's charge driven to its end (taking over a stalled attempt), then its answer. */
  async get(accountId: string, id: string): Promise<PurchaseRow | undefined> {
    if (!isUuid(id)) return undefined;
    const [row] = (await this.db.query('SELECT * FROM purchases WHERE id = $1 AND account_id = $2', [id, accountId])) as PurchaseRow[];
    return row;
  }
}

