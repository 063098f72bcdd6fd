/**
 * The plan work that falls due with time, safe on any number of instances: first what the
 * provider itself has due and tells in-process (the sandbox's renewals, failed renewals and
 * ends; Stripe tells by webhook instead), then our own calendar — a new allowance month inside
 * a billing period, the FREE tier's month, a plan cancelled at its period end ending. Each
 * account is taken with SKIP LOCKED and re-checked under its lock; every effect is keyed.
 */
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import type { Clock } from '../../../common/clock';
import { transaction } from '../../../common/db/transaction';
import type { CatalogService } from '../../catalog/catalog.service';
import type { PaymentIntents } from '../payment-intents';
import type { PaymentProvider } from '../payment-provider';
import type { ProviderEvent } from '../provider-events';
import { tierMap } from './plan-lifecycle';
import { decide } from './plan-policy';
import { stateOf, type AccountPlanRow } from './plan-state';
import type { PlanStore } from './plan-store';

/** Accounts with calendar work due at $1 (a period end of a plan not cancelled waits for the provider's renewal). */
const DUE = `plan_status = 'ACTIVE' AND (
    (current_period_end <= $1 AND cancel_at_period_end)
    OR (allowance_period_end <= $1 AND (current_period_end IS NULL OR allowance_period_end < current_period_end)))`;

export class PlanSweep {
  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly catalog: CatalogService,
    private readonly store: PlanStore,
    private readonly intents: PaymentIntents,
    private readonly provider: PaymentProvider,
    private readonly apply: (e: ProviderEvent) => Promise<unknown>,
    private readonly log: Logger,
  ) {}

  async renewDue(): Promise<number> {
    return (await this.providerDue()) + (await this.calendarDue());
  }

  /** What the provider has due (the sandbox's renewals), applied as its events, until nothing is left. */
  private async providerDue(): Promise<number> {
    let done = 0;
    const failed = new Set<string>();
    for (let round = 0; round < 1000; round++) {
      const events = (await this.provider.due(this.clock.now())).filter((e) => !failed.has(e.id));
      if (!events.length) break;
      for (const e of events) {
        try {
          await this.apply(e);
          await this.provider.delivered(e);
          done++;
        } catch (err) {
          failed.add(e.id);
          this.log.error({ err, event: e.id }, 'a provider event failed; it is applied again on the next run');
        }
      }
    }
    return done;
  }

  private async calendarDue(): Promise<number> {
    let done = 0;
    const failed = new Set<string>();
    for (let round = 0; round < 1000; round++) {
      const now = this.clock.now();
      // Read before the transactions: a catalog reload inside one would wait for a second connection.
      const tiers = tierMap(await this.catalog.tiers());
      const due = (await this.db.query(`SELECT id FROM accounts WHERE ${DUE} ORDER BY least(current_period_end, allowance_period_end) LIMIT 200`, [now])) as { id: string }[];
      let progressed = 0;
      for (const { id } of due) {
        if (failed.has(id)) continue;
        try {
          // One account per transaction: a failure stays with its account.
          const stepped = await transaction(this.db, async (tx) => {
            const [a] = await tx.query<AccountPlanRow>(`SELECT * FROM accounts WHERE id = $2 AND ${DUE} FOR NO KEY UPDATE SKIP LOCKED`, [now, id]);
            if (!a) return undefined;
            const s = stateOf(a);
            const d = decide(s, { type: 'timePassed', periodPurchaseId: await this.store.periodPurchase(tx, id, s.periodStart) }, now, tiers);
            if (!d.changes && !d.end) return undefined;
            return { group: await this.store.apply(tx, s, d) };
          });
          if (!stepped) continue;
          progressed++;
          if (stepped.group) await this.intents.runGroup(stepped.group).catch((err) => this.log.warn({ err, account: id }, 'provider call after a plan step failed; the reconciler retries it'));
        } catch (e) {
          failed.add(id);
          this.log.error({ err: e, account: id }, 'plan step failed; the account is retried on the next run');
        }
      }
      done += progressed;
      if (progressed === 0) break;
    }
    return done;
  }
}
