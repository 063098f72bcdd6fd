/**
 * The credit ledger: lots, immutable entries and the available balance on the account row.
 *
 * Every change first takes the account row lock with one conditional UPDATE of `available`
 * (a debit only matches when the balance covers it), then writes the lots, the entry, its lot
 * movements and the event in one further statement. Every path that touches an account's lots
 * holds that row lock, so the lots read in the second statement are current.
 */
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import type { Tx } from '../../common/db/transaction';
import { publishInTx } from '../../common/events/events';
import { LedgerEntryKind, LotSource } from './ledger.enums';
import { CreditLotEntity } from './credit-lot.entity';
import type { LedgerEntryRow } from './ledger-entry.type';

export interface BalanceSnapshot {
  accountId: string;
  available: number;
  lowCreditThreshold: number;
}

export interface GrantInput {
  accountId: string;
  amount: number;
  source: LotSource;
  kind: LedgerEntryKind;
  description: string;
  expiresAt?: Date | null;
  purchaseId?: string | null;
  jobId?: string | null;
  idempotencyKey?: string | null;
  actor?: string | null;
}

export interface DebitInput {
  accountId: string;
  amount: number;
  kind: LedgerEntryKind;
  description: string;
  jobId?: string | null;
  purchaseId?: string | null;
  idempotencyKey?: string | null;
  actor?: string | null;
}

export interface EntryWritten {
  entryId: string;
  balance: BalanceSnapshot;
}

/** The balance would pass the largest whole number a balance can hold (2^31 - 1). */
export class BalanceOverflow extends Error {}

export const MAX_BALANCE = 2147483647;
const BALANCE_COLUMNS = 'id AS "accountId", available, low_credit_threshold AS "lowCreditThreshold"';

export class LedgerService {
  constructor(private readonly db: DataSource, private readonly clock: Clock) {}

  /**
   * Adds `amount` credits as a new lot. Returns undefined when the account does not exist.
   * Throws BalanceOverflow when the balance would exceed what it can hold.
   */
  async grant(tx: Tx, g: GrantInput): Promise<EntryWritten | undefined> {
    const now = this.clock.now();
    const rows: BalanceSnapshot[] = await tx.query(
      `UPDATE accounts SET available = available + $2, updated_at = $3
       WHERE id = $1 AND available <= ${MAX_BALANCE} - $2 RETURNING ${BALANCE_COLUMNS}`,
      [g.accountId, g.amount, now],
    );
    const balance = rows[0];
    if (!balance) {
      const exists = await tx.query('SELECT 1 FROM accounts WHERE id = $1', [g.accountId]);
      if (exists.length) throw new BalanceOverflow(`the balance would exceed ${MAX_BALANCE} credits`);
      return undefined;
    }
    const [written] = (await tx.query(
      `WITH lot AS (
         INSERT INTO credit_lots (account_id, source, granted, remaining, expires_at, purchase_id, created_at)
         VALUES ($1, $2, $3, $3, $4, $5, $6) RETURNING id
       ), entry AS (
         INSERT INTO ledger_entries (account_id, kind, amount, balance_after, description, lot_id, job_id, purchase_id,
                                     idempotency_key, actor, created_at)
         SELECT $1, $7, $3, $8, $9, lot.id, $10, $5, $11, $12, $6 FROM lot RETURNING id, lot_id
       ), movement AS (
         INSERT INTO ledger_lot_movements (entry_id, lot_id, amount) SELECT id, lot_id, $3 FROM entry
       )
       SELECT id::text AS "entryId" FROM entry`,
      [
        g.accountId, g.source, g.amount, g.expiresAt ?? null, g.purchaseId ?? null, now,
        g.kind, balance.available, g.description, g.jobId ?? null, g.idempotencyKey ?? null, g.actor ?? null,
      ],
    )) as { entryId: string }[];
    await publishInTx(tx, { type: 'balance', ...balance });
    return { entryId: written.entryId, balance };
  }

  /**
   * Takes `amount` credits from the account's lots in spending order (soonest expiry, then
   * oldest). Returns 'insufficient' (and changes nothing) when the balance does not cover it,
   * undefined when the account does not exist.
   */
  async debit(tx: Tx, d: DebitInput): Promise<EntryWritten | 'insufficient' | undefined> {
    const now = this.clock.now();
    const rows: BalanceSnapshot[] = await tx.query(
      `UPDATE accounts SET available = available - $2, updated_at = $3
       WHERE id = $1 AND available >= $2 RETURNING ${BALANCE_COLUMNS}`,
      [d.accountId, d.amount, now],
    );
    const balance = rows[0];
    if (!balance) {
      const exists = await tx.query('SELECT 1 FROM accounts WHERE id = $1', [d.accountId]);
      return exists.length ? 'insufficient' : undefined;
    }
    const [written] = (await tx.query(
      `WITH ordered AS (
         SELECT id, remaining,
                sum(remaining) OVER (ORDER BY expires_at ASC NULLS LAST, created_at, id) AS running
         FROM credit_lots WHERE account_id = $1 AND remaining > 0
       ), pick AS (
         SELECT id, LEAST(remaining, $2 - (running - remaining))::int AS take FROM ordered WHERE running - remaining < $2
       ), spent AS (
         UPDATE credit_lots l SET remaining = l.remaining - p.take FROM pick p WHERE l.id = p.id RETURNING l.id
       ), entry AS (
         INSERT INTO ledger_entries (account_id, kind, amount, balance_after, description, job_id, purchase_id,
                                     idempotency_key, actor, created_at)
         VALUES ($1, $3, -$2::int, $4, $5, $6, $7, $8, $9, $10) RETURNING id
       ), movement AS (
         INSERT INTO ledger_lot_movements (entry_id, lot_id, amount) SELECT entry.id, pick.id, -pick.take FROM entry, pick
       )
       SELECT entry.id::text AS "entryId", (SELECT coalesce(sum(take), 0)::int FROM pick) AS taken FROM entry`,
      [
        d.accountId, d.amount, d.kind, balance.available, d.description, d.jobId ?? null, d.purchaseId ?? null,
        d.idempotencyKey ?? null, d.actor ?? null, now,
      ],
    )) as { entryId: string; taken: number }[];
    if (written.taken !== d.amount) {
      // The lots do not hold what the balance says: refuse to write an entry that hides it.
      throw new Error(`ledger inconsistency on account ${d.accountId}: lots held ${written.taken} of ${d.amount}`);
    }
    await publishInTx(tx, { type: 'balance', ...balance });
    return { entryId: written.entryId, balance };
  }

  /** The balance now; pass the transaction when inside one (never take a second connection). */
  async balance(accountId: string, tx?: Tx): Promise<BalanceSnapshot | undefined> {
    const sql = `SELECT ${BALANCE_COLUMNS} FROM accounts WHERE id = $1`;
    const rows = (tx ? await tx.query(sql, [accountId]) : await this.db.query(sql, [accountId])) as BalanceSnapshot[];
    return rows[0];
  }

  /** Lots that still hold credits, in spending order. */
  lots(accountId: string): Promise<CreditLotEntity[]> {
    return this.db
      .getRepository(CreditLotEntity)
      .createQueryBuilder('l')
      .where('l.account_id = :accountId AND l.remaining > 0', { accountId })
      .orderBy('l.expires_at', 'ASC', 'NULLS LAST')
      .addOrderBy('l.created_at', 'ASC')
      .addOrderBy('l.id', 'ASC')
      .getMany();
  }

  async entry(id: string): Promise<LedgerEntryRow | undefined> {
    const [row] = (await this.db.query('SELECT * FROM ledger_entries WHERE id = $1', [id])) as LedgerEntryRow[];
    return row;
  }

  /** Sets the low-credit warning level; returns the new balance or undefined for no account. */
  async setLowCreditThreshold(tx: Tx, accountId: string, threshold: number): Promise<BalanceSnapshot | undefined> {
    const [balance] = (await tx.query(
      `UPDATE accounts SET low_credit_threshold = $2, updated_at = $3 WHERE id = $1 RETURNING ${BALANCE_COLUMNS}`,
      [accountId, threshold, this.clock.now()],
    )) as BalanceSnapshot[];
    if (balance) await publishInTx(tx, { type: 'balance', ...balance });
    return balance;
  }
}
