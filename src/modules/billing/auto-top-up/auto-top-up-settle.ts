/**
 * An automatic purchase ended: its account's auto top-up learns it, in the transaction that
 * completed or failed the purchase. A success clears the failure count; a failure counts, and
 * the third in a row turns auto top-up off. Either way the account is told, and nothing is in
 * flight any more, so the next fall below the level may buy again.
 */
import type { Tx } from '../../../common/db/transaction';
import { keepNotice } from '../../notifications/notices';
import type { PurchaseRow } from '../purchase.type';

/** Failures in a row that turn auto top-up off. */
export const AUTO_TOP_UP_MAX_FAILURES = 3;

export async function autoTopUpCompleted(tx: Tx, p: PurchaseRow, now: Date): Promise<void> {
  await tx.query(
    `UPDATE auto_top_ups SET purchase_id = CASE WHEN purchase_id = $2 THEN NULL ELSE purchase_id END, failed_attempts = 0, last_purchase_at = $3
      WHERE account_id = $1`,
    [p.account_id, p.id, now],
  );
  await keepNotice(tx, p.account_id, { template: 'autoTopUpCompleted', params: { pack: p.pack_code!, credits: p.credits, cents: p.amount_cents, currency: p.currency } }, now, { purchaseId: p.id });
}

export async function autoTopUpFailed(tx: Tx, p: PurchaseRow, reason: string, now: Date): Promise<void> {
  const [row] = await tx.query<{ failed_attempts: number; enabled: boolean }>(
    `UPDATE auto_top_ups SET purchase_id = NULL, failed_attempts = least(failed_attempts + 1, $3), enabled = enabled AND failed_attempts + 1 < $3
      WHERE account_id = $1 AND purchase_id = $2 RETURNING failed_attempts, enabled`,
    [p.account_id, p.id, AUTO_TOP_UP_MAX_FAILURES],
  );
  const attempts = row?.failed_attempts ?? 1;
  await keepNotice(
    tx, p.account_id,
    { template: 'autoTopUpFailed', params: { pack: p.pack_code!, reason, attempts, disabled: attempts >= AUTO_TOP_UP_MAX_FAILURES } },
    now, { purchaseId: p.id },
  );
}
