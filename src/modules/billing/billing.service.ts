/**
 * Buying credit packs. A purchase is reserved (PENDING row and idempotency record, committed)
 * before the provider is charged, with the purchase id as the provider's idempotency key; it is
 * then completed in one transaction: COMPLETED, a PACK_PURCHASE lot that never expires, the
 * GRANT entry linked to the purchase, a PURCHASE_COMPLETED notification. A retry or a
 * concurrent duplicate with the same key finds the reservation and waits for its outcome, so a
 * key charges once; a retry after a crash between charge and completion finishes the job.
 */
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import { isUniqueViolation } from '../../common/db/sql';
import { transaction, type Tx } from '../../common/db/transaction';
import { isUuid } from '../../common/ids';
import { UserErrorCode } from '../../common/errors/user-error-code.enum';
import type { CatalogService } from '../catalog/catalog.service';
import { KeyReused, keyReusedError, replayOf, requestHash } from '../ledger/idempotency';
import { LedgerEntryKind, LotSource } from '../ledger/ledger.enums';
import type { BalanceSnapshot, LedgerService } from '../ledger/ledger.service';
import type { PaymentProvider } from './payment-provider';
import { PurchaseStatus, type PurchaseRow } from './purchase.type';

export const REFUND_WINDOW_MS = 24 * 3600 * 1000;

export interface PurchaseOutcome {
  purchase?: PurchaseRow;
  checkoutUrl?: string | null;
  balance?: BalanceSnapshot;
  error?: { code: UserErrorCode; message: string; field?: string[] };
}

export class BillingService {
  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly catalog: CatalogService,
    private readonly ledger: LedgerService,
    private readonly provider: PaymentProvider,
  ) {}

  async purchasePack(accountId: string, req: { packCode: string; idempotencyKey?: string | null }): Promise<PurchaseOutcome> {
    const pack = (await this.catalog.packs()).find((p) => p.code === req.packCode);
    if (!pack) {
      return { error: { code: UserErrorCode.NOT_FOUND, message: `No credit pack "${req.packCode}" is on sale; see creditPacks`, field: ['input', 'packCode'] } };
    }
    const key = req.idempotencyKey
      ? { scope: accountId, key: req.idempotencyKey, operation: 'purchaseCreditPack', hash: requestHash('purchaseCreditPack', { packCode: pack.code }) }
      : undefined;
    const id = randomUUID();
    const now = this.clock.now();
    try {
      await transaction(this.db, async (tx) => {
        await tx.query(
          `INSERT INTO purchases (id, account_id, kind, status, pack_code, credits, amount_cents, currency, provider, created_at)
           VALUES ($1, $2, 'CREDIT_PACK', 'PENDING', $3, $4, $5, $6, $7, $8)`,
          [id, accountId, pack.code, pack.credits, pack.priceCents, pack.currency, this.provider.name, now],
        );
        if (key) {
          await tx.query(
            `INSERT INTO idempotency_keys (scope, key, operation, request_hash, response, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
            [key.scope, key.key, key.operation, key.hash, JSON.stringify({ purchaseId: id }), now],
          );
        }
      });
    } catch (e) {
      if (key && isUniqueViolation(e, 'idempotency_keys_pkey')) return this.replay(accountId, await replayOf<{ purchaseId: string }>(this.db, key));
      throw e;
    }
    return this.settle(accountId, id);
  }

  /** Charges a reserved purchase (again, safely) and completes it; returns where it ended. */
  private async settle(accountId: string, purchaseId: string, takeover = false): Promise<PurchaseOutcome> {
    const purchase = await this.get(accountId, purchaseId);
    if (!purchase) throw new Error(`purchase ${purchaseId} vanished`);
    if (purchase.status !== PurchaseStatus.PENDING) return { purchase, balance: await this.ledger.balance(accountId) };
    const charge = await this.provider.charge({
      purchaseId,
      accountId,
      amountCents: purchase.amount_cents,
      currency: purchase.currency.trim(),
      description: `${purchase.credits} credits (${purchase.pack_code} pack)`,
    });
    if (charge.status === 'pending') {
      await this.db.query(`UPDATE purchases SET provider_ref = $2, checkout_url = $3 WHERE id = $1 AND status = 'PENDING'`, [purchaseId, charge.ref, charge.checkoutUrl]);
      return { purchase: (await this.get(accountId, purchaseId))!, checkoutUrl: charge.checkoutUrl, balance: await this.ledger.balance(accountId) };
    }
    if (charge.status === 'failed') {
      // Taking over a stalled first attempt, the first charge may still succeed: leave it PENDING.
      if (!takeover) await this.db.query(`UPDATE purchases SET status = 'FAILED', failure_reason = $2 WHERE id = $1 AND status = 'PENDING'`, [purchaseId, charge.reason]);
      return {
        purchase: (await this.get(accountId, purchaseId))!,
        error: { code: UserErrorCode.PAYMENT_FAILED, message: `The payment failed: ${charge.reason}` },
      };
    }
    return this.complete(accountId, purchaseId, charge.ref);
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
      await tx.query(
        `INSERT INTO notifications (account_id, kind, message, created_at) VALUES ($1, 'PURCHASE_COMPLETED', $2, $3)`,
        [accountId, `Thank you: ${row.credits} credits from the ${row.pack_code} pack are yours, and they never expire.`, now],
      );
      return { purchase: row, balance: granted.balance };
    }
  }

  /** PENDING → FAILED (a checkout that expired or whose payment failed), inside the caller's transaction. */
  async failIn(tx: Tx, purchaseId: string, reason: string): Promise<void> {
    await tx.query(`UPDATE purchases SET status = 'FAILED', failure_reason = $2 WHERE id = $1 AND status = 'PENDING'`, [purchaseId, reason]);
  }

  private async replay(accountId: string, stored: { purchaseId: string } | KeyReused): Promise<PurchaseOutcome> {
    if (stored instanceof KeyReused) {
      return { error: keyReusedError() };
    }
    // The first request may still be charging: wait for it (briefly), then take over if it stalled.
    for (let i = 0; i < 50; i++) {
      const p = await this.get(accountId, stored.purchaseId);
      if (p && p.status !== PurchaseStatus.PENDING) return { purchase: p, balance: await this.ledger.balance(accountId) };
      await new Promise((r) => setTimeout(r, 20 + i * 5));
    }
    return this.settle(accountId, stored.purchaseId, true);
  }

  async get(accountId: string, id: string): Promise<PurchaseRow | undefined> {
    if (!isUuid(id)) return undefined;
    const [row] = (await this.db.query('SELECT * FROM purchases WHERE id = $1 AND account_id = $2', [id, accountId])) as PurchaseRow[];
    return row;
  }
}

