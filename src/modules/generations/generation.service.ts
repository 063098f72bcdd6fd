/**
 * Starting and canceling generations. A start is the database function `start_generation`:
 * the tier gate, the price (the quote's, or the current book's), the debit, the QUEUED job row
 * with the account's queue class, the DEBIT entry linked to it, the events and the idempotency
 * record, so the account row is locked for a single round trip. Starts that arrive while the
 * database is busy leave together in one statement and one commit. Any refusal writes nothing
 * to the balance, the ledger or the jobs.
 */
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import { sqlOf, type Sql } from '../../common/db/sql';
import { transaction } from '../../common/db/transaction';
import { Batcher } from '../../common/batcher';
import { isUuid } from '../../common/ids';
import { jobEventSql } from '../../common/events/events';
import { UserErrorCode } from '../../common/errors/user-error-code.enum';
import type { TierCode } from '../catalog/catalog.enums';
import type { CatalogService } from '../catalog/catalog.service';
import { KeyReused, keyReusedError, record, replayOf, requestHash } from '../ledger/idempotency';
import type { BalanceSnapshot, LedgerService } from '../ledger/ledger.service';
import { settingsKey, type SettingsInputShape } from '../quotes/generation-settings';
import type { QuoteEntity } from '../quotes/quote.entity';
import type { Priced, QuoteService, QuoteView } from '../quotes/quote.service';
import { CLASS_LABEL } from '../quotes/price-rules';
import { requiredFeatures } from '../quotes/tier-gate';
import type { JobRow } from './generation-job.type';
import { JobStatus } from './job-status.enum';

/** A start whose idempotency key was taken meanwhile: it changed nothing; the first answers. */
const KEY_TAKEN = Symbol('key taken');

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

/** What a start returns, and what its idempotency record keeps (ids and numbers only). */
export interface StartOutcome {
  jobId?: string;
  job?: JobRow;
  quote?: QuoteView;
  quoteId?: string;
  balance?: BalanceSnapshot;
  topUpPacks?: string[];
  error?: Refusal;
}

export interface CancelOutcome {
  job?: JobRow;
  balance?: BalanceSnapshot;
  error?: Refusal;
}

interface StartRow {
  n: number;
  tier: TierCode;
  allowed: boolean;
  available_now: number;
  ok: boolean | null;
  balance: number | null;
  threshold: number;
  queue_class: string | null;
  job_id: string | null;
  key_taken: boolean;
  /** The account row was locked by another transaction: nothing was done; run it again, waiting. */
  busy: boolean;
}

/** One start as the database function `start_generation` takes it. */
interface StartItem {
  account: string;
  credits: number;
  description: string;
  job: string;
  needs: string[];
  side: number;
  key: string | null;
  now: Date;
  type: string;
  settings: unknown;
  prompt: string;
  cost_class: string;
  version: number;
  quote: string | null;
  hash: string | null;
}

/**
 * Several starts in one statement (one round trip, one commit), in account order. Each start
 * is the database function `start_generation`, which gives up alone when its key was taken
 * meanwhile and, unless told to wait, when another transaction holds its account row.
 */
const START_BATCH_SQL = `
  SELECT i.n, r.* FROM json_to_recordset($1::json) AS i(
      n int, account text, credits int, description text, job uuid, needs text[], side int, key text, now timestamptz,
      type text, settings jsonb, prompt text, cost_class text, version int, quote uuid, hash text),
    LATERAL start_generation(i.account, i.credits, i.description, i.job, i.needs, i.side, i.key, i.now, i.type, i.settings,
      i.prompt, i.cost_class, i.version, i.quote, i.hash, $2) r`;

export class GenerationService {
  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly catalog: CatalogService,
    private readonly quotes: QuoteService,
    private readonly ledger: LedgerService,
    startConcurrency = 2,
    startBatchMax = 32,
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
   * Starts wait here while `startConcurrency` batches are in the database, then leave together;
   * an account is in one batch at a time. Every start commits with a NOTIFY, and PostgreSQL
   * serialises those commits: one commit for many starts is what lets throughput grow with
   * load (docs/PERFORMANCE.md).
   */
  private readonly starts: Batcher<StartItem, StartRow | undefined>;
  /**
   * Starts whose account another transaction held (a refund, a plan change, another instance):
   * run alone, waiting for the lock, so that a batch never waits while holding other accounts.
   */
  private readonly waitingStarts: Batcher<StartItem, StartRow | undefined>;

  private async startBatch(items: StartItem[], wait: boolean): Promise<(StartRow | undefined)[]> {
    const order = items.map((item, n) => ({ n, ...item })).sort((a, b) => (a.account < b.account ? -1 : a.account > b.account ? 1 : a.n - b.n));
    const rows = await this.sql<StartRow>(START_BATCH_SQL, [JSON.stringify(order), wait], 'start_generations');
    const byN: (StartRow | undefined)[] = new Array(items.length);
    for (const r of rows) byN[r.n] = r;
    return byN;
  }

  /** A start in the database: batched, then alone and waiting if its account was busy. */
  private async submit(item: StartItem): Promise<StartRow | undefined> {
    const row = await this.starts.submit(item);
    if (!row?.busy) return row;
    const waited = await this.waitingStarts.submit(item);
    if (waited?.busy) throw new Error(`start on account ${item.account} came back busy after waiting for its lock`);
    return waited;
  }

  async start(accountId: string, req: StartRequest): Promise<StartOutcome> {
    const priced = await this.quotes.price(req.settings, 'input.settings');
    const quote = req.quoteId ? await this.quotes.find(accountId, req.quoteId) : undefined;
    const key = req.idempotencyKey
      ? { scope: accountId, key: req.idempotencyKey, operation: 'startGeneration', hash: requestHash('startGeneration', { settings: priced.settings, prompt: req.prompt, quoteId: req.quoteId ?? null }) }
      : undefined;
    const outcome = await this.attempt(accountId, req, priced, quote, key?.hash);
    // The key was taken (a retry, or a concurrent duplicate that committed first): this
    // start changed nothing; answer with the first request's outcome.
    if (outcome === KEY_TAKEN) return this.replay(accountId, await replayOf<StartOutcome>(this.db, key!));
    if (key && outcome.error) {
      // Refusals are kept too, so that a retry after a top-up gets the same answer.
      const { quote: _q, ...store } = outcome;
      const first = await record<StartOutcome>(this.db, key, store, this.clock.now());
      if (first instanceof KeyReused || first.error?.code !== outcome.error.code || first.quoteId !== outcome.quoteId) return this.replay(accountId, first);
    }
    return outcome;
  }

  /** Rebuilds a kept outcome: a job (with the balance its debit left) or the kept refusal. */
  private async replay(accountId: string, stored: StartOutcome | KeyReused): Promise<StartOutcome> {
    if (stored instanceof KeyReused) {
      return { error: keyReusedError() };
    }
    if (!stored.jobId) return stored;
    const job = await this.get(accountId, stored.jobId);
    const [debit] = (await this.db.query(
      `SELECT e.balance_after, a.low_credit_threshold FROM ledger_entries e JOIN accounts a ON a.id = e.account_id
        WHERE e.job_id = $1 AND e.kind = 'DEBIT' AND e.account_id = $2`,
      [stored.jobId, accountId],
    )) as { balance_after: number; low_credit_threshold: number }[];
    return {
      jobId: stored.jobId,
      job,
      quoteId: job?.quote_id ?? undefined,
      balance: debit ? { accountId, available: debit.balance_after, lowCreditThreshold: debit.low_credit_threshold } : undefined,
    };
  }

  /**
   * The quote's checks, then the start in the database (batched with others): the tier gate,
   * the debit (only when the gate passed), the job (only when the debit succeeded), its event
   * and, with a key, the idempotency record.
   */
  private async attempt(accountId: string, req: StartRequest, priced: Priced, quote: QuoteEntity | undefined, hash: string | undefined): Promise<StartOutcome | typeof KEY_TAKEN> {
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
    const version = quote?.priceBookVersion ?? priced.priceBookVersion;
    const jobId = randomUUID();
    const row = await this.submit({
      account: accountId,
      credits,
      description: `Generation: ${CLASS_LABEL[costClass].toLowerCase()}${priced.settings.count > 1 ? ` ×${priced.settings.count}` : ''}`,
      job: jobId,
      needs: requiredFeatures(costClass, priced.model.premium),
      side: Math.max(priced.settings.width, priced.settings.height),
      key: req.idempotencyKey ?? null,
      now,
      type: priced.settings.type,
      settings: priced.settings,
      prompt: req.prompt,
      cost_class: costClass,
      version,
      quote: quote?.id ?? null,
      hash: hash ?? null,
    });
    if (!row) throw new Error(`account ${accountId} does not exist`);
    if (row.key_taken) return KEY_TAKEN;

    if (!row.allowed) {
      const held = quote ?? (await this.quotes.save(undefined, accountId, priced));
      const view = await this.quotes.view(held, row.available_now, row.tier, priced);
      return {
        quote: view,
        quoteId: held.id,
        error: {
          code: UserErrorCode.FEATURE_NOT_IN_TIER,
          message: `Your ${row.tier} plan does not include ${view.missingFeatures.join(', ')}` +
            (view.requiredTier ? `; the ${view.requiredTier} plan does` : ''),
          field: ['input', 'settings'],
        },
      };
    }
    const balance = { accountId, available: row.balance!, lowCreditThreshold: row.threshold };
    if (!row.ok) {
      const missing = credits - row.balance!;
      const held = quote ?? (await this.quotes.save(undefined, accountId, priced));
      return {
        balance,
        quote: await this.quotes.view(held, row.balance!, row.tier, priced),
        quoteId: held.id,
        topUpPacks: await this.topUpOptions(missing),
        error: {
          code: UserErrorCode.INSUFFICIENT_CREDITS,
          message: `This generation costs ${credits} credits and your balance is ${row.balance}: ${missing} more needed`,
        },
      };
    }
    const job: JobRow = {
      id: jobId, account_id: accountId, status: JobStatus.QUEUED, type: priced.settings.type as JobRow['type'], prompt: req.prompt,
      cost_class: costClass, credits, price_book_version: version, quote_id: quote?.id ?? null,
      queue_class: row.queue_class as JobRow['queue_class'], progress: 0, result_urls: [], failure_reason: null, refunded: false,
      created_at: now, started_at: null, finished_at: null,
    };
    return { jobId, job, quoteId: quote?.id, quote: quote ? await this.quotes.view(quote, row.balance! + credits, row.tier, priced) : undefined, balance };
  }

  /** Pack codes covering a shortfall, smallest first; the largest pack when none covers it alone. */
  async topUpOptions(missing: number): Promise<string[]> {
    const covering = await this.catalog.packsCovering(missing);
    if (covering.length) return covering.map((p) => p.code);
    const all = await this.catalog.packs();
    const largest = [...all].sort((a, b) => b.credits - a.credits)[0];
    return largest ? [largest.code] : [];
  }

  /** A QUEUED job of the caller becomes CANCELED and its credits come back; a RUNNING one runs on. */
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
        const [current] = await tx.query<JobRow>('SELECT * FROM generation_jobs WHERE id = $1 AND account_id = $2', [jobId, accountId]);
        if (!current) return { error: notFound() };
        return {
          job: current,
          error: {
            code: UserErrorCode.INVALID_STATE,
            message: current.status === JobStatus.RUNNING ? 'The job is already running; it runs to its end' : `The job is already ${current.status}`,
            field: ['jobId'],
          },
        };
      }
      const refund = await this.ledger.refundJob(tx, accountId, jobId, 'Refund: generation canceled before it started');
      if (!refund) throw new Error(`job ${jobId} has no debit to refund`);
      return { job, balance: refund.balance };
    });
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
