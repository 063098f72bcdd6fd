/**
 * The state changes of a purchase waiting for its payment, shared by packs and plans: the
 * provider refused it (FAILED, with why), or it waits on the provider's checkout page.
 */
import type { Tx } from '../../common/db/transaction';

export async function failPending(tx: Tx, purchaseId: string, reason: string): Promise<void> {
  await tx.query(`UPDATE purchases SET status = 'FAILED', failure_reason = $2 WHERE id = $1 AND status = 'PENDING'`, [purchaseId, reason]);
}

export async function awaitCheckout(tx: Tx, purchaseId: string, ref: string, checkoutUrl: string): Promise<void> {
  await tx.query(`UPDATE purchases SET provider_ref = $2, checkout_url = $3 WHERE id = $1 AND status = 'PENDING'`, [purchaseId, ref, checkoutUrl]);
}
