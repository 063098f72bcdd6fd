/**
 * Starting and canceling generations. The service decides a start — the quote's checks, the
 * price, the tier gate for the account's tier as it read it, the queue class — and the database
 * function `start_generation` carries it out under the account row lock: the debit, the QUEUED
 * job row, the DEBIT entry linked to it, the events and the idempotency record, in one round
 * trip. If the account's tier changed since it was read, the function refuses as stale and the
 * service decides again. Starts that arrive while the database is busy leave together in one
 * statement and one commit. Any refusal writes nothing to the balance, the ledger or the jobs.
 */
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import { sqlOf, type Sql } from '../../common/db/sql';
import { transaction } from '../../common/db/transaction';
import { Batcher } from '../../common/batcher';
import type { Metrics } from '../../common/metrics/metrics';
import { isUuid } from '../../common/ids';
import { jobEventSql } from '../../common/events/events';
import { UserErrorCode } from '../../common/errors/user-error-code.enum';
import { credits as creditsText } from '../../common/text/credits';
import { answerKept, claim, keyFor, lookup, type IdempotencyKey } from '../../common/idempotency/idempotency';
import { QUEUE_RANK, type TierCode } from '../catalog/catalog.enums';
import type { CatalogService } from '../catalog/catalog.service';
import type { BalanceSnapshot, LedgerService } from '../ledger/ledger.service';
import { settingsKey, type SettingsInputShape } from '../quotes/generation-settings';
import type { QuoteEntity } from '../quotes/quote.entity';
import type { Priced, QuoteService, QuoteView } from '../quotes/quote.service';
import { CLASS_LABEL } from '../quotes/price-rules';
import { featureTier, gateRefusalMessage, missingFeatures } from '../quotes/tier-gate';
import type { JobRow } from './generation-job.type';
import { JobStatus } from './job-status.enum';
import type { StartCommand, StartResult } from './start-command';

/** A start whose idempotency key was taken meanwhile: it changed nothing; the first answers. */
const KEY_TAKEN = Symbol('key taken');

/** Accounts whose tier the service remembers (least recently started forgotten first). */
const MAX_REMEMBERED_STANDINGS = 100_000;

/** How often a start decides again after its account's tier changed under it, before it gives up. */
const MAX_STALE_RETRIES = 5;

export interface StartRequest {
  settings: SettingsInputShape;
  prompt: string;
  quoteId?: string | null;
  idempotencyKey?: string | null;
}

export interface Refusal {
  code: UserErrorCode;
  message: string;
  field?: string[];
}

/** What a start returns. */
export interface StartOutcome {
  jobId?: string;
  job?: JobRow;
  quote?: QuoteView;
  quoteId?: string;
  balance?: BalanceSnapshot;
  topUpPacks?: string[];
  error?: Refusal;
}

/** What a start keeps under its key: the job, or the refusal (with its quote and top-up packs). */
type KeptStart = Pick<StartOutcome, 'jobId' | 'quoteId' | 'topUpPacks' | 'error'> & { balance?: BalanceSnapshot };

export interface CancelOutcome {
  job?: JobRow;
  balance?: BalanceSnapshot;
  error?: Refusal;
}

/** The account as a start reads it before deciding. */
interface Standing {
  tier: TierCode;
  plan_status: string;
  available: number;
}

/**
 * Several starts in one statement (one round trip, one commit), in the order given (account
 * order). Each is the database function `start_generation`, which gives up alone when its key
 * was taken meanwhile, when its decision is stale and, unless told to wait, when another
 * transaction holds its account row.
 */
const START_BATCH_SQL = `
  SELECT e.n::int AS n, r.* FROM json_array_elements($1::json) WITH ORDINALITY AS e(command, n),
    LATERAL start_generation(json_populate_record(NULL::start_command, e.command), $2) r`;

export class GenerationService {
  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly catalog: CatalogService,
    private readonly quotes: QuoteService,
    private readonly ledger: LedgerService,
    startConcurrency = 2,
    startBatchMax = 32,
    private readonly metrics?: Metrics,
  ) {
    this.sql = sqlOf(db);
    this.starts = new Batcher((items) => this.startBatch(items, false), {
      concurrency: startConcurrency,
      maxSize: startBatchMax,
      keyOf: (item) => item.account,
    });
    this.waitingStarts = new Batcher((items) => this.startBatch(items, true), { concurrency: startConcurrency, maxSize: 1 });
  }

  private readonly sql: Sql;
  /**
   * Auto top-up's buy-first (auto-top-up.service.ts): a start of `credits` found short asks it to
   * buy its pack now; true when the balance may cover it now, and the start is tried again once.
   */
  buyFirst?: (accountId: string, credits: number) => Promise<boolean>;
  /**
   * The tier and plan status each account's last start saw. A start is decided on it without a
   * read; the database refuses it as stale when the account changed (on any instance), returning
   * the new one, and the start is decided again — so remembering is never wrong, only stale.
   */
  private readonly standings = new Map<string, Pick<Standing, 'tier' | 'plan_status'>>();
  /**
   * Starts wait here while `startConcurrency` batches are in the database, then leave together;
   * an account is in one batch at a time. Every start commits with a NOTIFY, and PostgreSQL
   * serialises those commits: one commit for many starts is what lets throughput grow with
   * load (docs/PERFORMANCE.md).
   */
  private readonly starts: Batcher<StartCommand, StartResult | undefined>;
  /**
   * Starts whose account another transaction held (a refund, a plan change, another instance):
   * run alone, waiting for the lock, so that a batch never waits while holding other accounts.
   */
  private readonly waitingStarts: Batcher<StartCommand, StartResult | undefined>;

  private async startBatch(commands: StartCommand[], wait: boolean): Promise<(StartResult | undefined)[]> {
    this.metrics?.generationStartBatch(commands.length);
    const order = commands.map((_, n) => n).sort((a, b) => (commands[a].account < commands[b].account ? -1 : commands[a].account > commands[b].account ? 1 : a - b));
    const rows = await this.sql<StartResult & { n: number }>(START_BATCH_SQL, [JSON.stringify(order.map((n) => commands[n])), wait], 'start_generations');
    const byN: (StartResult | undefined)[] = new Array(commands.length);
    for (const { n, ...r } of rows) byN[order[n - 1]] = r as StartResult;
    return byN;
  }

  /** A start in the database: batched, then alone and waiting if its account was busy. */
  private async submit(command: StartCommand): Promise<StartResult | undefined> {
    const row = await this.starts.submit(command);
    if (row?.outcome !== 'busy') return row;
    const waited = await this.waitingStarts.submit(command);
    if (waited?.outcome === 'busy') throw new Error(`start on account ${command.account} came back busy after waiting for its lock`);
    return waited;
  }

  /**
   * Starts a generation paid by `accountId`: the caller's own account, or a workspace that
   * `member` starts it from (their monthly limit applies; their key is theirs, not the pool's).
   */
  async start(accountId: string, req: StartRequest, member: string | null = null): Promise<StartOutcome> {
    const priced = await this.quotes.price(req.settings, 'input.settings');
    const input = { settings: priced.settings, prompt: req.prompt, quoteId: req.quoteId ?? null, ...(member ? { workspaceId: accountId } : {}) };
    const key = keyFor(member ?? accountId, req.idempotencyKey, 'startGeneration', input);
    if (key) {
      const kept = await lookup<KeptStart>(this.db, key);
      if (kept) return answerKept(kept, (k) => this.replay(accountId, k));
    }
    const quote = req.quoteId ? await this.quotes.find(accountId, req.quoteId) : undefined;
    const outcome = await this.attempt(accountId, req, priced, quote, key, member);
    if (outcome !== KEY_TAKEN && !(key && outcome.error)) return this.decided(outcome);
    // Refusals are kept too, so that a retry after a top-up gets the same answer; a key taken
    // meanwhile (a concurrent duplicate that committed first) answers with the first outcome.
    if (outcome !== KEY_TAKEN) {
      const { quote: _view, job: _job, ...keep } = outcome;
      if (await claim(this.db, key!, keep, this.clock.now())) return this.decided(outcome);
    }
    const kept = await lookup<KeptStart>(this.db, key!);
    if (!kept) throw new Error('the idempotency record of startGeneration vanished');
    return answerKept(kept, (k) => this.replay(accountId, k));
  }

  /** A start decided here (not a replay): counted by its outcome. */
  private decided(outcome: StartOutcome): StartOutcome {
    this.metrics?.generationStart(outcome.error?.code);
    return outcome;
  }

  /** Rebuilds a kept outcome: the job as it is now (with the balance its debit left), or the kept refusal. */
  private async replay(accountId: string, kept: KeptStart): Promise<StartOutcome> {
    if (!kept.jobId) return kept;
    const job = await this.get(accountId, kept.jobId);
    const [debit] = (await this.db.query(
      `SELECT e.balance_after, a.low_credit_threshold FROM ledger_entries e JOIN accounts a ON a.id = e.account_id
        WHERE e.job_id = $1 AND e.kind = 'DEBIT' AND e.account_id = $2`,
      [kept.jobId, accountId],
    )) as { balance_after: number; low_credit_threshold: number }[];
    return {
      jobId: kept.jobId,
      job,
      quoteId: job?.quote_id ?? undefined,
      balance: debit ? { accountId, available: debit.balance_after, lowCreditThreshold: debit.low_credit_threshold } : undefined,
    };
  }

  /** The quote's checks, then the tier gate and the start in the database (decided again when stale). */
  private async attempt(
    accountId: string, req: StartRequest, priced: Priced, quote: QuoteEntity | undefined, key: IdempotencyKey | undefined, member: string | null,
  ): Promise<StartOutcome | typeof KEY_TAKEN> {
    const now = this.clock.now();
    if (req.quoteId) {
      if (!quote) return { error: { code: UserErrorCode.NOT_FOUND, message: 'No quote of yours has this id', field: ['input', 'quoteId'] } };
      if (quote.expiresAt.getTime() <= now.getTime()) {
        return { quoteId: quote.id, error: { code: UserErrorCode.QUOTE_EXPIRED, message: `The quote expired at ${quote.expiresAt.toISOString()}; ask for a new one`, field: ['input', 'quoteId'] } };
      }
      if (quote.settingsKey !== settingsKey(priced.settings)) {
        return { quoteId: quote.id, error: { code: UserErrorCode.QUOTE_MISMATCH, message: 'The settings differ from the quoted ones', field: ['input', 'settings'] } };
      }
    }
    const credits = quote?.credits ?? priced.price.credits;
    const costClass = quote?.costClass ?? priced.price.costClass;
    const jobId = randomUUID();
    let account = this.standings.get(accountId) ?? (await this.standing(accountId));
    let boughtFirst = false;
    for (let tries = 0; ; tries++) {
      const tiers = await this.catalog.tiers();
      let tier = tiers.find((t) => t.code === featureTier(account))!;
      if (missingFeatures(tier, priced.settings, costClass, priced.model.premium).length) {
        // A refusal is never decided on a remembered tier: read the account as it is now.
        const now = await this.standing(accountId);
        tier = tiers.find((t) => t.code === featureTier(now))!;
        if (now.tier !== account.tier || now.plan_status !== account.plan_status) {
          account = now;
          continue;
        }
        const held = quote ?? (await this.quotes.save(undefined, accountId, priced));
        const view = await this.quotes.view(held, now.available, tier.code, priced);
        return {
          quote: view,
          quoteId: held.id,
          error: { code: UserErrorCode.FEATURE_NOT_IN_TIER, message: gateRefusalMessage(account, view.missingFeatures, view.requiredTier), field: ['input', 'settings'] },
        };
      }
      const r = await this.submit({
        account: accountId,
        credits,
        description: `Generation: ${CLASS_LABEL[costClass].toLowerCase()}${priced.settings.count > 1 ? ` ×${priced.settings.count}` : ''}`,
        job: jobId,
        type: priced.settings.type,
        settings: priced.settings,
        prompt: req.prompt,
        cost_class: costClass,
        price_book_version: quote?.priceBookVersion ?? priced.priceBookVersion,
        quote: quote?.id ?? null,
        tier: account.tier,
        plan_status: account.plan_status,
        queue_class: tier.queueClass,
        queue_rank: QUEUE_RANK[tier.queueClass],
        key: key?.key ?? null,
        request_hash: key?.hash ?? null,
        response: { jobId } satisfies KeptStart,
        now,
        member,
      });
      if (!r) throw new Error(`account ${accountId} does not exist`);
      if (r.outcome === 'key_taken') return KEY_TAKEN;
      if (r.outcome === 'not_member') return { error: { code: UserErrorCode.NOT_FOUND, message: 'No workspace of yours has this id', field: ['input', 'workspaceId'] } };
      if (r.outcome === 'member_limit') {
        return {
          error: {
            code: UserErrorCode.MEMBER_LIMIT_REACHED,
            message: `This generation costs ${creditsText(credits)}: with the ${r.balance} you spent this month it would pass your monthly limit of ${r.threshold} in this workspace`,
          },
        };
      }
      if (r.tier) this.remember(accountId, { tier: r.tier, plan_status: r.plan_status });
      // The tier or plan status changed since it was read: decide again on the new one.
      if (r.outcome === 'stale' && tries < MAX_STALE_RETRIES) {
        account = { tier: r.tier, plan_status: r.plan_status };
        continue;
      }
      if (r.outcome !== 'debited' && r.outcome !== 'short') throw new Error(`a start on account ${accountId} came back ${r.outcome} (after ${tries} stale tries)`);
      const balance = { accountId, available: r.balance, lowCreditThreshold: r.threshold };
      if (r.outcome === 'short') {
        const missing = credits - r.balance;
        if (!boughtFirst && this.buyFirst && (await this.buyFirst(accountId, credits))) {
          boughtFirst = true;
          continue;
        }
        const held = quote ?? (await this.quotes.save(undefined, accountId, priced));
        return {
          balance,
          quote: await this.quotes.view(held, r.balance, tier.code, priced),
          quoteId: held.id,
          topUpPacks: await this.topUpOptions(missing),
          error: { code: UserErrorCode.INSUFFICIENT_CREDITS, message: `This generation costs ${creditsText(credits)} and your balance is ${r.balance}: ${missing} more needed` },
        };
      }
      const job: JobRow = {
        id: jobId, account_id: accountId, status: JobStatus.QUEUED, type: priced.settings.type as JobRow['type'], prompt: req.prompt, settings: priced.settings,
        cost_class: costClass, credits, price_book_version: quote?.priceBookVersion ?? priced.priceBookVersion, quote_id: quote?.id ?? null,
        queue_class: tier.queueClass as JobRow['queue_class'], queue_rank: QUEUE_RANK[tier.queueClass], progress: 0, result_urls: [], failure_reason: null, refunded: false, cancel_requested: false,
        started_by: member ?? accountId,
        created_at: now, started_at: null, finished_at: null,
      };
      return { jobId, job, quoteId: quote?.id, quote: quote ? await this.quotes.view(quote, r.balance + credits, tier.code, priced) : undefined, balance };
    }
  }

  /** The account's tier, plan status and balance as they are now (remembered for the next start). */
  private async standing(accountId: string): Promise<Standing> {
    const [account] = await this.sql<Standing>('SELECT tier, plan_status, available FROM accounts WHERE id = $1', [accountId], 'start_standing');
    if (!account) throw new Error(`account ${accountId} does not exist`);
    this.remember(accountId, account);
    return account;
  }

  private remember(accountId: string, s: Pick<Standing, 'tier' | 'plan_status'>): void {
    this.standings.delete(accountId); // re-inserted last: the map's order is the recency order
    this.standings.set(accountId, { tier: s.tier, plan_status: s.plan_status });
    if (this.standings.size > MAX_REMEMBERED_STANDINGS) this.standings.delete(this.standings.keys().next().value!);
  }

  /** Pack codes covering a shortfall, smallest first; the largest pack when none covers it alone. */
  async topUpOptions(missing: number): Promise<string[]> {
    const covering = await this.catalog.packsCovering(missing);
    if (covering.length) return covering.map((p) => p.code);
    const all = await this.catalog.packs();
    const largest = [...all].sort((a, b) => b.credits - a.credits)[0];
    return largest ? [largest.code] : [];
  }

  /**
   * A QUEUED job of the caller becomes CANCELED and its credits come back. A RUNNING one is asked
   * to stop (cancelRequested): its worker learns it from its next report or event, and the
   * unrendered share comes back when it stops (worker.service.ts). Asking again changes nothing.
   */
  async cancel(accountId: string, jobId: string): Promise<CancelOutcome> {
    if (!isUuid(jobId)) return { error: notFound() };
    return transaction(this.db, async (tx) => {
      const now = this.clock.now();
      const [job] = await tx.query<JobRow>(
        `WITH c AS (
           UPDATE generation_jobs SET status = 'CANCELED', finished_at = $3, refunded = true
            WHERE id = $1 AND account_id = $2 AND status = 'QUEUED' RETURNING *
         ) SELECT c.*, ${jobEventSql('c')} AS notified FROM c`,
        [jobId, accountId, now],
      );
      if (!job) {
        const [asked] = await tx.query<JobRow>(
          `WITH c AS (
             UPDATE generation_jobs SET cancel_requested = true
              WHERE id = $1 AND account_id = $2 AND status = 'RUNNING' AND NOT cancel_requested RETURNING *
           ) SELECT c.*, ${jobEventSql('c')} AS notified FROM c`,
          [jobId, accountId],
        );
        if (asked) return { job: asked, balance: await this.ledger.balance(accountId, tx) };
        const [current] = await tx.query<JobRow>('SELECT * FROM generation_jobs WHERE id = $1 AND account_id = $2', [jobId, accountId]);
        if (!current) return { error: notFound() };
        if (current.status === JobStatus.RUNNING) return { job: current, balance: await this.ledger.balance(accountId, tx) };
        return { job: current, error: { code: UserErrorCode.INVALID_STATE, message: `The job is already ${current.status}`, field: ['jobId'] } };
      }
      const refund = await this.ledger.refundJob(tx, accountId, jobId, 'Refund: generation canceled before it started');
      if (!refund) throw new Error(`job ${jobId} has no debit to refund`);
      return { job, balance: refund.balance };
    });
  }

  /** 1 for the next job of its queue class to be claimed; null unless QUEUED. */
  async queuePosition(job: { id: string; status: JobStatus; queueRank: number; createdAt: Date }): Promise<number | null> {
    if (job.status !== JobStatus.QUEUED) return null;
    const [r] = await this.sql<{ ahead: number }>(
      `SELECT count(*)::int AS ahead FROM generation_jobs WHERE status = 'QUEUED' AND queue_rank = $1 AND (created_at, id) < ($2, $3)`,
      [job.queueRank, job.createdAt, job.id], 'job_queue_position');
    return r.ahead + 1;
  }

  /** The caller's own job, or undefined (another account's job is treated as unknown). */
  async get(accountId: string, jobId: string): Promise<JobRow | undefined> {
    if (!isUuid(jobId)) return undefined;
    const [row] = (await this.db.query('SELECT * FROM generation_jobs WHERE id = $1 AND account_id = $2', [jobId, accountId])) as JobRow[];
    return row;
  }
}

function notFound(): Refusal {
  return { code: UserErrorCode.NOT_FOUND, message: 'No job of yours has this id', field: ['jobId'] };
}
