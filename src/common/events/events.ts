/**
 * Events leave inside the writing transaction (the database function event_send: a logical
 * decoding message, or pg_notify — src/common/events/event-transport.ts): delivered at commit,
 * in commit order, to every instance, and dropped on rollback.
 * Payloads carry ids and small numbers only (NOTIFY payloads must stay under 8000 bytes).
 */
import type { Tx } from '../db/transaction';

export const EVENTS_CHANNEL = 'credits_events';

/** Built by the database function ledger_balance_event. */
export interface BalanceChangedEvent {
  type: 'balance';
  accountId: string;
  available: number;
  lowCreditThreshold: number;
}

/** Built by the database function job_event. */
export interface JobUpdatedEvent {
  type: 'job';
  accountId: string;
  jobId: string;
  status: string;
  progress: number;
}

/** A new price book was published (accountId '*': for every instance, not an account). */
export interface PriceBookEvent {
  type: 'pricebook';
  accountId: '*';
  version: number;
}

/** A low-credit warning (sent by the ledger_warnings database function). */
export interface WarningEvent {
  type: 'warning';
  accountId: string;
  level: 'LOW' | 'DEPLETED';
  balance: number;
  threshold: number;
  notificationId: string;
  at: string;
}

/** A notification was kept (sent by the notification_added trigger). */
export interface NotificationEvent {
  type: 'notification';
  accountId: string;
  notificationId: string;
}

/** A fall below the auto top-up level asked for a purchase (sent by auto_top_up_request): some instance claims and makes it. */
export interface AutoTopUpEvent {
  type: 'autoTopUp';
  accountId: string;
}

/** A workspace membership changed (accountId: the workspace): removed, its open subscriptions end at once; every instance forgets what it remembered of it. */
export interface MembershipEvent {
  type: 'membership';
  accountId: string;
  member: string;
  removed: boolean;
}

/** The shared test clock moved (TEST_CLOCK=1). */
export interface ClockEvent {
  type: 'clock';
  accountId: '*';
  offsetMs: number;
}

export type DomainEvent = BalanceChangedEvent | JobUpdatedEvent | PriceBookEvent | WarningEvent | NotificationEvent | AutoTopUpEvent | MembershipEvent | ClockEvent;

export type EventType = DomainEvent['type'];

export async function publishInTx(tx: Tx, event: DomainEvent): Promise<void> {
  await tx.query('SELECT event_send($1)', [JSON.stringify(event)]);
}

/** SQL that publishes a JobUpdatedEvent for the generation_jobs row aliased `t` (use in a SELECT): the database function job_event builds it. */
export function jobEventSql(t: string): string {
  return `job_event(${t}.account_id, ${t}.id, ${t}.status, ${t}.progress)`;
}
