/** Operator adjustments: idempotent, one transaction, never below zero. */
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import { UserErrorCode } from '../../common/errors/user-error-code.enum';
import { credits } from '../../common/text/credits';
import { keyed, keyFor } from '../../common/idempotency/idempotency';
import { LedgerEntryKind, LotSource } from './ledger.enums';
import { BalanceOverflow, type BalanceSnapshot, type LedgerService } from './ledger.service';

export interface AdjustRequest {
  accountId: string;
  amount: number;
  reason: string;
  idempotencyKey?: string | null;
}

export interface AdjustOutcome {
  entryId?: string;
  balance?: BalanceSnapshot;
  error?: { code: UserErrorCode; message: string; field?: string[] };
}

export class AdjustmentService {
  constructor(private readonly db: DataSource, private readonly clock: Clock, private readonly ledger: LedgerService) {}

  async adjust(actor: string, req: AdjustRequest): Promise<AdjustOutcome> {
    const { idempotencyKey, ...input } = req;
    // The kept outcome is the answer itself: ids and numbers only.
    return keyed<AdjustOutcome, AdjustOutcome>(this.db, keyFor(actor, idempotencyKey, 'adjustCredits', input), () => this.clock.now(), {
      answer: async (fresh) => fresh,
      replay: async (kept) => kept,
      work: async (tx) => {
        const common = { accountId: req.accountId, description: req.reason, actor, idempotencyKey };
        let outcome: AdjustOutcome;
        try {
          const written =
            req.amount > 0
              ? await this.ledger.grant(tx, { ...common, amount: req.amount, source: LotSource.ADJUSTMENT, kind: LedgerEntryKind.ADJUSTMENT })
              : await this.ledger.debit(tx, { ...common, amount: -req.amount, kind: LedgerEntryKind.ADJUSTMENT });
          if (written === undefined) {
            outcome = { error: { code: UserErrorCode.NOT_FOUND, message: 'No account has this id', field: ['input', 'accountId'] } };
          } else if ('insufficient' in written) {
            const { balance } = written;
            outcome = {
              balance,
              error: {
                code: UserErrorCode.INSUFFICIENT_CREDITS,
                message: `Cannot take ${credits(-req.amount)}: the balance is ${balance.available}`,
                field: ['input', 'amount'],
              },
            };
          } else {
            outcome = { entryId: written.entryId, balance: written.balance };
          }
        } catch (e) {
          if (!(e instanceof BalanceOverflow)) throw e;
          outcome = { error: { code: UserErrorCode.INVALID_INPUT, message: 'The balance would exceed 2147483647 credits', field: ['input', 'amount'] } };
        }
        return outcome;
      },
    });
  }
}
