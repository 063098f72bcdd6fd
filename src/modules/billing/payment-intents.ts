/**
 * Money moves as intent → commit → provider call → completion, under one idempotency key:
 * 1. the intent is recorded in the transaction of the decision that needs it (with the account
 *    row lock held — but no provider is called there);
 * 2. after commit the provider is called, holding no lock and inside no transaction, with the
 *    intent's stable key (a repeated call is one call at the provider);
 * 3. the answer is applied in a transaction of its own, once (the intent must still be OPEN).
 * Intents of one group (one mutation) run in `seq` order. An intent whose call's outcome is
 * unknown (a crash, a timeout, a 5xx) stays OPEN; the reconciler re-drives it, on any instance,
 * once it is older than RECONCILE_AFTER — a lease keeps two instances from driving one at a time.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import { transaction, type Tx } from '../../common/db/transaction';

export type IntentKind =
  | 'pack.charge'
  | 'pack.charge_saved'
  | 'plan.subscribe'
  | 'plan.upgrade'
  | 'subscription.reprice'
  | 'subscription.cancel_at_period_end'
  | 'subscription.cancel_at'
  | 'subscription.cancel_now'
  | 'refund';

export interface IntentSpec {
  kind: IntentKind;
  /** What the provider is asked; `key` is its idempotency key. */
  payload: { key: string } & Record<string, unknown>;
}

export interface IntentRow {
  id: string;
  group_id: string;
  seq: number;
  account_id: string;
  kind: IntentKind;
  payload: IntentSpec['payload'];
  status: 'OPEN' | 'DONE' | 'FAILED';
  result: unknown;
  attempts: number;
}

/** The provider's definite refusal (a declined card): the intent ends FAILED. */
export interface Refused {
  refused: string;
}

/** A provider's answer with its `failed` status turned into a Refused result. */
export function refusedOr<T extends { status: string }>(r: T): Exclude<T, { status: 'failed' }> | Refused {
  return r.status === 'failed' ? { refused: (r as { reason?: string }).reason ?? 'refused' } : (r as Exclude<T, { status: 'failed' }>);
}

export interface IntentHandler {
  /** The provider call (no lock held, no transaction open); throws when its outcome is unknown. */
  call(intent: IntentRow): Promise<unknown>;
  /** Reads what the completion needs before its transaction opens (the catalog). */
  prepare?(): Promise<unknown>;
  /** Applies the answer, once, in a transaction of its own; may record a group of intents to run after it commits. */
  complete(tx: Tx, intent: IntentRow, result: unknown, prepared: unknown): Promise<string | null | void>;
}

const LEASE_MS = 60_000;
/** How long a caller waits for another one driving an intent before it drives it itself (takeover) or gives up. */
const TAKEOVER_AFTER_MS = 3_000;
const MAX_ATTEMPTS = 20;

/** Test-only fault injection (FAULT_KILL_AT=<kind>:<step>): the process dies there, as in a crash. */
export type KillPoint = 'committed' | 'called' | 'completed';

export class PaymentIntents {
  private readonly handlers = new Map<IntentKind, IntentHandler>();

  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly reconcileAfterMs: number,
    private readonly killAt?: string,
  ) {}

  register(kind: IntentKind, handler: IntentHandler): void {
    this.handlers.set(kind, handler);
  }

  /** Records intents in the caller's transaction; returns their group. */
  async record(tx: Tx, accountId: string, specs: IntentSpec[], groupId: string = randomUUID()): Promise<string> {
    const now = this.clock.now();
    for (const [seq, s] of specs.entries()) {
      await tx.query(
        `INSERT INTO payment_intents (id, group_id, seq, account_id, kind, payload, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`,
        [randomUUID(), groupId, seq, accountId, s.kind, JSON.stringify(s.payload), now],
      );
    }
    return groupId;
  }

  /**
   * Drives a group's open intents in order, after the commit that recorded them. Stops at an
   * intent whose outcome is unknown (it throws: the caller answers with an error, the reconciler
   * or a retry with the mutation's key drives it later). An intent another caller is driving is
   * waited for, briefly; with `takeover` (a client retrying with its key) it is then driven here
   * even though its lease has not run out — its first driver may have died, and the provider's
   * key makes a second call the same call.
   */
  async runGroup(groupId: string, opts: { takeover?: boolean } = {}): Promise<void> {
    const intents = (await this.db.query('SELECT * FROM payment_intents WHERE group_id = $1 ORDER BY seq', [groupId])) as IntentRow[];
    for (const intent of intents) {
      if (intent.status !== 'OPEN') continue;
      await this.drive(intent, opts.takeover ?? false);
    }
  }

  /** Re-drives intents left open longer than RECONCILE_AFTER (a crash, a lost answer). */
  async reconcile(): Promise<number> {
    const now = this.clock.now();
    const groups = (await this.db.query(
      `SELECT group_id FROM payment_intents WHERE status = 'OPEN' AND updated_at <= $1 AND (lease_until IS NULL OR lease_until < $2)
        GROUP BY group_id ORDER BY min(created_at) LIMIT 100`,
      [new Date(now.getTime() - this.reconcileAfterMs), now],
    )) as { group_id: string }[];
    let driven = 0;
    for (const { group_id } of groups) {
      try {
        await this.runGroup(group_id);
        driven++;
      } catch (e) {
        this.log.warn({ err: e, group: group_id }, 'payment intent still open; retried on the next run');
      }
    }
    return driven;
  }

  private async drive(intent: IntentRow, takeover: boolean): Promise<void> {
    const handler = this.handlers.get(intent.kind);
    if (!handler) throw new Error(`no handler for payment intent kind ${intent.kind}`);
    this.maybeKill(intent.kind, 'committed');
    const now = this.clock.now();
    let claimed = await this.claim(intent.id, now, false);
    if (!claimed) {
      if ((await this.waitFor(intent.id, TAKEOVER_AFTER_MS)) || !takeover) return;
      claimed = await this.claim(intent.id, this.clock.now(), true);
      if (!claimed) return;
    }
    let result: unknown;
    try {
      result = await handler.call(claimed);
    } catch (e) {
      if (claimed.attempts >= MAX_ATTEMPTS) {
        this.log.error({ err: e, intent: claimed.id, kind: claimed.kind }, 'payment intent given up after too many attempts: an operator must look at it');
        const prepared = await handler.prepare?.();
        await transaction(this.db, async (tx) => this.finish(tx, claimed, handler, { refused: `gave up: ${e instanceof Error ? e.message : String(e)}` }, prepared));
        return;
      }
      // Unknown outcome: the lease is let go, so a retry with the key (or the reconciler) drives it again.
      await this.db.query(`UPDATE payment_intents SET lease_until = NULL WHERE id = $1 AND status = 'OPEN'`, [claimed.id]);
      throw e;
    }
    this.maybeKill(claimed.kind, 'called');
    const prepared = await handler.prepare?.();
    const next = await transaction(this.db, (tx) => this.finish(tx, claimed, handler, result, prepared));
    this.maybeKill(claimed.kind, 'completed');
    if (next) await this.runGroup(next);
  }

  private async finish(tx: Tx, intent: IntentRow, handler: IntentHandler, result: unknown, prepared: unknown): Promise<string | null> {
    const [open] = await tx.query<IntentRow>(`SELECT * FROM payment_intents WHERE id = $1 AND status = 'OPEN' FOR UPDATE`, [intent.id]);
    if (!open) return null; // completed meanwhile by another caller
    const next = (await handler.complete(tx, open, result, prepared)) ?? null;
    const refused = typeof result === 'object' && result !== null && 'refused' in result;
    await tx.query(`UPDATE payment_intents SET status = $2, result = $3, lease_until = NULL, updated_at = $4 WHERE id = $1`, [
      intent.id, refused ? 'FAILED' : 'DONE', JSON.stringify(result ?? null), this.clock.now(),
    ]);
    return next;
  }

  /** Takes the intent's lease (`force`: also from a holder whose lease has not run out); undefined when it is not OPEN or taken. */
  private async claim(id: string, now: Date, force: boolean): Promise<IntentRow | undefined> {
    // (TypeORM answers an UPDATE … RETURNING with [rows, count].)
    const [[claimed]] = (await this.db.query(
      `UPDATE payment_intents SET lease_until = $2, attempts = attempts + 1, updated_at = $3
        WHERE id = $1 AND status = 'OPEN' AND ($4 OR lease_until IS NULL OR lease_until < $3) RETURNING *`,
      [id, new Date(now.getTime() + LEASE_MS), now, force],
    )) as [IntentRow[], number];
    return claimed;
  }

  /** Another caller holds the intent's lease: waits up to `ms` for it to be settled; true when it was. */
  private async waitFor(id: string, ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    for (let i = 0; Date.now() < until; i++) {
      const [row] = (await this.db.query('SELECT status FROM payment_intents WHERE id = $1', [id])) as { status: string }[];
      if (!row || row.status !== 'OPEN') return true;
      await new Promise((r) => setTimeout(r, Math.min(20 + i * 5, 200)));
    }
    return false;
  }

  private maybeKill(kind: IntentKind, point: KillPoint): void {
    if (this.killAt === `${kind}:${point}`) process.kill(process.pid, 'SIGKILL');
  }
}
