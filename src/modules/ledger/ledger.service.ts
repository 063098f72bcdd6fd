/**
 * The credit ledger: lots, immutable entries and the available balance on the account row.
 *
 * Money moves only through the ledger_* database functions (migrations/…-ledger-functions):
 * each takes the account row lock with one conditional UPDATE of `available` (a debit only
 * matches when the balance covers it), then writes lots, entry, lot movements and the balance
 * event inside PostgreSQL, so the lock is held for one round trip of the caller at most.
 */
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import type { Tx } from '../../common/db/transaction';
import type { TierCode } from '../catalog/catalog.enums';
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
  /** The available balance just before this change. */
  balanceBefore: number;
  tier: TierCode;
}

/** A debit the balance did not cover; nothing was written. */
export interface Insufficient {
  insufficient: true;
  balance: BalanceSnapshot;
  tier: TierCode;
}

/** What the ledger_* database functions return. */
interface FunctionRow {
  ok: boolean;
  balance: number;
  balance_before: number;
  threshold: number;
  account_tier: TierCode;
  out_entry: string | null;
}

function snapshot(accountId: string, r: FunctionRow): BalanceSnapshot {
  return { accountId, available: r.balance, lowCreditThreshold: r.threshold };
}

function written(accountId: string, r: FunctionRow): EntryWritten {
  return { entryId: String(r.out_entry), balance: snapshot(accountId, r), balanceBefore: r.balance_before, tier: r.account_tier };
}

/** The balance would pass the largest whole number a balance can hold (2^31 - 1). */
export class BalanceOverflow extends Error {}

export const MAX_BALANCE = 2147483647;
const BALANCE_COLUMNS = 'id AS "accountId", available, low_credit_threshold AS "lowCreditThreshold"';

export class LedgerService {
  constructor(private readonly db: DataSource, private readonly clock: Clock) {}

  /**
   * Adds `amount` credits as a new lot. Returns undefined when the account does not exist.
   * Throws BalanceOverflow (nothing written) when the balance would exceed what it can hold.
   */
  async grant(tx: Tx, g: GrantInput): Promise<EntryWritten | undefined> {
    const [row] = await tx.query<FunctionRow>(
      `SELECT * FROM ledger_grant($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [
        g.accountId, g.amount, g.source, g.kind, g.description, g.expiresAt ?? null, g.purchaseId ?? null,
        g.jobId ?? null, g.idempotencyKey ?? null, g.actor ?? null, this.clock.now(),
      ],
    );
    if (!row) return undefined;
    if (!row.ok) throw new BalanceOverflow(`the balance would exceed ${MAX_BALANCE} credits`);
    return written(g.accountId, row);
  }

  /**
   * Takes `amount` credits from the account's lots in spending order (soonest expiry, then
   * oldest). Returns 'insufficient' (nothing written) when the balance does not cover it,
   * undefined when the account does not exist.
   */
  async debit(tx: Tx, d: DebitInput): Promise<EntryWritten | Insufficient | undefined> {
    const [row] = await tx.query<FunctionRow>(`SELECT * FROM ledger_debit($1, $2, $3, $4, $5, $6, $7, $8, $9)`, [
      d.accountId, d.amount, d.kind, d.description, d.jobId ?? null, d.purchaseId ?? null,
      d.idempotencyKey ?? null, d.actor ?? null, this.clock.now(),
    ]);
    if (!row) return undefined;
    if (!row.ok) return { insufficient: true, balance: snapshot(d.accountId, row), tier: row.account_tier };
    return written(d.accountId, row);
  }

  /**
   * Gives a job's debit back to the lots it came from — or only `part` of it (a stopped job's
   * unrendered share), to the lots taken last first. Undefined when the job had no debit, or `part` is 0.
   */
  async refundJob(tx: Tx, accountId: string, jobId: string, description: string, part?: number): Promise<(EntryWritten & { amount: number }) | undefined> {
    const [row] = await tx.query<FunctionRow & { amount: number }>(`SELECT * FROM ledger_refund_job($1, $2, $3, $4, $5)`, [
      accountId, jobId, description, this.clock.now(), part ?? null,
    ]);
    return row ? { ...written(accountId, row), amount: row.amount } : undefined;
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
    // The same balance event as every ledger function's; the balance did not move, so no warning.
    if (balance) await tx.query('SELECT ledger_balance_event($1, $2, $3, $2, $4)', [accountId, balance.available, balance.lowCreditThreshold, this.clock.now()]);
    return balance;
  }
}
