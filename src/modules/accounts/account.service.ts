/**
 * Accounts open on the first authenticated request of an unknown subject: FREE tier, the
 * tier's sign-up credits as a SIGNUP_BONUS lot. Concurrent first requests race on the primary
 * key; exactly one inserts the row and grants the bonus, the others wait for it and go on.
 */
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import { transaction, type Tx } from '../../common/db/transaction';
import type { TierEntity } from '../catalog/tier.entity';
import { TierCode } from '../catalog/catalog.enums';
import type { CatalogService } from '../catalog/catalog.service';
import { LedgerEntryKind, LotSource } from '../ledger/ledger.enums';
import type { LedgerService } from '../ledger/ledger.service';
import { AccountEntity } from './account.entity';

const KNOWN_CACHE_LIMIT = 100_000;

export class AccountService {
  /** Subjects known to have an account (accounts are never deleted). */
  private readonly known = new Set<string>();

  /** Set by the services: grants the FREE tier's monthly credits when the catalog gives any. */
  freeMonth?: (tx: Tx, accountId: string, free: TierEntity, start: Date) => Promise<void>;

  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly catalog: CatalogService,
    private readonly ledger: LedgerService,
  ) {}

  /** Makes sure the subject has an account; returns true when this call opened it. */
  async ensureOpen(accountId: string): Promise<boolean> {
    if (this.known.has(accountId)) return false;
    const free = await this.catalog.tier(TierCode.FREE);
    const opened = await transaction(this.db, async (tx) => {
      const now = this.clock.now();
      const inserted: unknown[] = await tx.query(
        `INSERT INTO accounts (id, tier, plan_status, available, low_credit_threshold, created_at, updated_at)
         VALUES ($1, $2, 'ACTIVE', 0, $3, $4, $4) ON CONFLICT (id) DO NOTHING RETURNING id`,
        [accountId, free.code, free.defaultLowCreditThreshold, now],
      );
      if (inserted.length === 0) return false;
      if (free.monthlyCredits > 0) await this.freeMonth?.(tx, accountId, free, now);
      if (free.signupCredits > 0) {
        await this.ledger.grant(tx, {
          accountId,
          amount: free.signupCredits,
          source: LotSource.SIGNUP_BONUS,
          kind: LedgerEntryKind.GRANT,
          description: `Sign-up bonus: ${free.signupCredits} credits`,
        });
      }
      return true;
    });
    if (this.known.size >= KNOWN_CACHE_LIMIT) this.known.clear();
    this.known.add(accountId);
    return opened;
  }

  get(id: string): Promise<AccountEntity | null> {
    return this.db.getRepository(AccountEntity).findOneBy({ id });
  }
}
