/**
 * Auto top-up: when a committed change leaves the balance below the account's level, one pack is
 * bought for it, charged off-session to the saved payment method (payment-provider.ts).
 *
 * Exactly one purchase per fall, on any number of instances: the debit that fell asks for it in
 * its own transaction, under the account row lock (db/functions/auto_top_up_request.sql: only
 * when enabled, nothing asked or in flight, and the month's cap not reached), and tells every
 * instance; after that commit one of them claims the request — under the account row lock again,
 * so a second claimer finds nothing — and records the purchase and its charge intent in the same
 * transaction; the provider is called after that commit (intent → commit → call → complete,
 * payment-intents.ts). The purchase's end settles it (auto-top-up-settle.ts). The sweep claims
 * what no instance did (one that crashed between the commits).
 *
 * A start that is short buys first (buyForStart) when the pack covers what is missing, and is
 * then accepted in the same call.
 */
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import type { Clock } from '../../../common/clock';
import { transaction, type Tx } from '../../../common/db/transaction';
import { UserErrorCode } from '../../../common/errors/user-error-code.enum';
import type { CatalogService } from '../../catalog/catalog.service';
import type { CreditPackEntity } from '../../catalog/credit-pack.entity';
import type { BillingService, Kept } from '../billing.service';
import type { PaymentIntents } from '../payment-intents';

export interface AutoTopUpRow {
  account_id: string;
  enabled: boolean;
  pack_code: string;
  below_credits: number;
  max_per_month: number;
  failed_attempts: number;
  requested_at: Date | null;
  purchase_id: string | null;
  last_purchase_at: Date | null;
}

/** The settings and where they stand this month. */
export interface AutoTopUpView {
  row: AutoTopUpRow;
  purchasesThisMonth: number;
}

export interface AutoTopUpOutcome {
  view?: AutoTopUpView;
  error?: { code: UserErrorCode; message: string; field?: string[] };
}

/** How long a short start waits for an automatic purchase already in flight. */
const IN_FLIGHT_WAIT_MS = 5_000;

export class AutoTopUpService {
  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly catalog: CatalogService,
    private readonly billing: BillingService,
    private readonly intents: PaymentIntents,
    private readonly log: Logger,
  ) {}

  async view(accountId: string): Promise<AutoTopUpView | undefined> {
    const [row] = (await this.db.query(`SELECT t.*, auto_top_up_bought(t.account_id, $2) AS bought FROM auto_top_ups t WHERE account_id = $1`, [
      accountId, this.clock.now(),
    ])) as (AutoTopUpRow & { bought: number })[];
    return row && { row, purchasesThisMonth: row.bought };
  }

  /** Turns auto top-up on with these settings (again: its failure count starts over). Nothing is bought until the balance next falls below the level. */
  async set(accountId: string, input: { packCode: string; belowCredits: number; maxPerMonth: number }): Promise<AutoTopUpOutcome> {
    const pack = (await this.catalog.packs()).find((p) => p.code === input.packCode);
    if (!pack) return { error: { code: UserErrorCode.NOT_FOUND, message: `No credit pack "${input.packCode}" is on sale; see creditPacks`, field: ['input', 'packCode'] } };
    const now = this.clock.now();
    await this.db.query(
      `INSERT INTO auto_top_ups (account_id, enabled, pack_code, below_credits, max_per_month, created_at, updated_at) VALUES ($1, true, $2, $3, $4, $5, $5)
       ON CONFLICT (account_id) DO UPDATE SET enabled = true, pack_code = $2, below_credits = $3, max_per_month = $4, failed_attempts = 0, updated_at = $5`,
      [accountId, pack.code, input.belowCredits, input.maxPerMonth, now],
    );
    return { view: await this.view(accountId) };
  }

  /** Turns it off (a purchase already in flight still ends as the provider answers); the settings are kept. */
  async disable(accountId: string): Promise<AutoTopUpOutcome> {
    await this.db.query(`UPDATE auto_top_ups SET enabled = false, requested_at = NULL, updated_at = $2 WHERE account_id = $1`, [accountId, this.clock.now()]);
    return { view: await this.view(accountId) };
  }

  /** Claims the account's requested purchase, if it is still due, and makes it. Safe to call from every instance at once. */
  async drive(accountId: string): Promise<void> {
    const packs = await this.catalog.packs();
    const group = await transaction(this.db, async (tx) => {
      const t = await this.lock(tx, accountId);
      if (!t?.requested_at) return null;
      const pack = packs.find((p) => p.code === t.pack_code);
      const due = t.enabled && pack && t.available < t.below_credits && (await this.bought(tx, accountId)) < t.max_per_month;
      if (!due) {
        await tx.query(`UPDATE auto_top_ups SET requested_at = NULL WHERE account_id = $1`, [accountId]);
        return null;
      }
      return (await this.record(tx, accountId, pack)).groupId;
    });
    if (group) await this.run(group);
  }

  /** Drives the requests no instance claimed (the instance told crashed first); returns how many were driven. */
  async sweep(): Promise<number> {
    const rows = (await this.db.query(`SELECT account_id FROM auto_top_ups WHERE requested_at IS NOT NULL ORDER BY requested_at LIMIT 100`)) as { account_id: string }[];
    for (const r of rows) await this.drive(r.account_id).catch((e) => this.log.error({ err: e, account: r.account_id }, 'auto top-up failed to run'));
    return rows.length;
  }

  /**
   * A start costing `credits` found the balance short: when auto top-up is on, under its cap and
   * its pack covers what is missing, the pack is bought now (or the purchase in flight is waited
   * for). True when the balance may cover the start now (paid, or topped up meanwhile): the
   * start is tried again.
   */
  async buyForStart(accountId: string, credits: number): Promise<boolean> {
    const [on] = (await this.db.query('SELECT 1 FROM auto_top_ups WHERE account_id = $1 AND enabled', [accountId])) as unknown[];
    if (!on) return false; // the common case: no lock taken
    const packs = await this.catalog.packs();
    const step = await transaction(this.db, async (tx) => {
      const t = await this.lock(tx, accountId);
      if (!t?.enabled) return null;
      const missing = credits - t.available;
      if (missing <= 0) return { purchaseId: null as string | null, groupId: null as string | null }; // another purchase landed meanwhile
      const pack = packs.find((p) => p.code === t.pack_code);
      if (!pack || pack.credits < missing) return null;
      if (t.purchase_id) return { purchaseId: t.purchase_id, groupId: null };
      if ((await this.bought(tx, accountId)) >= t.max_per_month) return null;
      return this.record(tx, accountId, pack);
    });
    if (!step) return false;
    if (!step.purchaseId) return true;
    if (step.groupId) await this.run(step.groupId);
    else await this.settled(step.purchaseId, IN_FLIGHT_WAIT_MS);
    const [p] = (await this.db.query('SELECT status FROM purchases WHERE id = $1', [step.purchaseId])) as { status: string }[];
    return p?.status === 'COMPLETED';
  }

  /** The account row lock first (as every ledger change takes it, then this row), then the settings. */
  private async lock(tx: Tx, accountId: string): Promise<(AutoTopUpRow & { available: number }) | undefined> {
    const [a] = await tx.query<{ available: number }>('SELECT available FROM accounts WHERE id = $1 FOR NO KEY UPDATE', [accountId]);
    if (!a) return undefined;
    const [t] = await tx.query<AutoTopUpRow>('SELECT * FROM auto_top_ups WHERE account_id = $1 FOR UPDATE', [accountId]);
    return t && { ...t, available: a.available };
  }

  private async bought(tx: Tx, accountId: string): Promise<number> {
    const [r] = await tx.query<{ n: number }>('SELECT auto_top_up_bought($1, $2) AS n', [accountId, this.clock.now()]);
    return r.n;
  }

  /** The automatic purchase and its charge, recorded as in flight. */
  private async record(tx: Tx, accountId: string, pack: CreditPackEntity): Promise<Kept> {
    const kept = await this.billing.recordPack(tx, accountId, pack, true);
    await tx.query(`UPDATE auto_top_ups SET requested_at = NULL, purchase_id = $2 WHERE account_id = $1`, [accountId, kept.purchaseId]);
    return kept;
  }

  /** The charge, after commit; an unknown outcome is left to the reconciler (the purchase stays in flight). */
  private async run(groupId: string): Promise<void> {
    await this.intents.runGroup(groupId).catch((e) => this.log.warn({ err: e, group: groupId }, 'auto top-up charge outcome unknown; the reconciler drives it again'));
  }

  private async settled(purchaseId: string, ms: number): Promise<void> {
    const until = Date.now() + ms;
    for (let i = 0; Date.now() < until; i++) {
      const [p] = (await this.db.query('SELECT status FROM purchases WHERE id = $1', [purchaseId])) as { status: string }[];
      if (!p || p.status !== 'PENDING') return;
      await new Promise((r) => setTimeout(r, Math.min(20 + i * 10, 200)));
    }
  }
}
