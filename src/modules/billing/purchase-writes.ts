/**
 * The state changes of a purchase waiting for its payment, shared by packs and plans: the
 * provider refused it (FAILED, with why), or it waits on the provider's checkout page (or, for
 * an off-session payment still processing, on the provider's word: no page).
 */
import type { Tx } from '../../common/db/transaction';
import type { PurchaseRow } from './purchase.type';

/** The purchase it failed; undefined when it was no longer PENDING. */
export async function failPending(tx: Tx, purchaseId: string, reason: string): Promise<PurchaseRow | undefined> {
  const [row] = await tx.query<PurchaseRow>(`UPDATE purchases SET status = 'FAILED', failure_reason = $2 WHERE id = $1 AND status = 'PENDING' RETURNING *`, [purchaseId, reason]);
  return row;
}

export async function awaitCheckout(tx: Tx, purchaseId: string, ref: string, checkoutUrl: string | null): Promise<void> {
  await tx.query(`UPDATE purchases SET provider_ref = $2, checkout_url = $3 WHERE id = $1 AND status = 'PENDING'`, [purchaseId, ref, checkoutUrl]);
}
