/**
 * Events leave through pg_notify inside the writing transaction: PostgreSQL delivers them at
 * commit, in commit order, to every instance that listens, and drops them on rollback.
 * Payloads carry ids and small numbers only (NOTIFY payloads must stay under 8000 bytes).
 */
import type { Tx } from '../db/transaction';

export const EVENTS_CHANNEL = 'credits_events';

export interface BalanceChangedEvent {
  type: 'balance';
  accountId: string;
  available: number;
  lowCreditThreshold: number;
}

export type DomainEvent = BalanceChangedEvent;

export type EventType = DomainEvent['type'];

export async function publishInTx(tx: Tx, event: DomainEvent): Promise<void> {
  await tx.query('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, JSON.stringify(event)]);
}
