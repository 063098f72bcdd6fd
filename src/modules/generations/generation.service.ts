/**
 * Starting and canceling generations. A start is one transaction: the tier gate, the price
 * (the quote's, or the current book's), the debit, the QUEUED job row with the account's queue
 * class, the DEBIT entry linked to it and the events — all in one statement, so the account
 * row is locked for a single round trip — then the idempotency record. Any refusal writes
 * nothing to the balance, the ledger or the jobs.
 */
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import { isUniqueViolation, sqlOf, type Sql } from '../../common/db/sql';
import { transaction } from '../../common/db/transaction';
import { KeyedQueue } from '../../common/keyed-queue';
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
import { JobStatus, QUEUE_RANK_SQL } from './job-status.enum';

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
  tier: TierCode;
  allowed: boolean;
  ok: boolean | null;
  balance: number | null;
  threshold: number;
  queue_class: string | null;
  job_id: string | null;
  available_now: number;
}

export class GenerationService {
  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly catalog: CatalogService,
    private readonly quotes: QuoteService,
    private readonly ledger: LedgerService,
    startConcurrency = 4,
  ) {
    this.sql = sqlOf(db);
    this.inFlight = new KeyedQueue(startConcurrency);
  }

  private readonly sql: Sql;
  /** Two starts per account at a time (the next waits at the row lock while one commits). */
  private readonly perAccount = new KeyedQueue(2);
  /** Starts in the database at once: every start commits with a NOTIFY, and PostgreSQL
   *  serialises those commits, so more at once only add lock contention (docs/PERFORMANCE.md). */
  private readonly inFlight: KeyedQueue;

  async start(accountId: string, req: StartRequest): Promise<StartOutcome> {
    const priced = await this.quotes.price(req.settings, 'input.settings');
    const quote = req.quoteId ? await this.quotes.find(accountId, req.quoteId) : undefined;
    const key = req.idempotencyKey
      ? { scope: accountId, key: req.idempotencyKey, operation: 'startGeneration', hash: requestHash('startGeneration', { settings: priced.settings, prompt: req.prompt, quoteId: req.quoteId ?? null }) }
      : undefined;
    let outcome: StartOutcome;
    try {
      outcome = await this.perAccount.run(accountId, () => this.inFlight.run('all', () => this.attempt(accountId, req, priced, quote, key?.hash)));
    } catch (e) {
      // The key was taken (a retry, or a concurrent duplicate that committed first): this
      // attempt rolled back whole; answer with the first request's outcome.
      if (key && isUniqueViolation(e, 'idempotency_keys_pkey')) return this.replay(accountId, await replayOf<StartOutcome>(this.db, key));
      throw e;
    }
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
   * One statement, hence one transaction and one round trip: the tier gate, the debit (only
   * when the gate passed), the job (only when the debit succeeded), the job event and, with a
   * key, the idempotency record (a taken key fails the statement and undoes all of it).
   */
  private async attempt(accountId: string, req: StartRequest, priced: Priced, quote: QuoteEntity | undefined, hash: string | undefined): Promise<StartOutcome> {
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
    const needs = requiredFeatures(costClass, priced.model.premium);
    const side = Math.max(priced.settings.width, priced.settings.height);
    const jobId = randomUUID();
    const description = `Generation: ${CLASS_LABEL[costClass].toLowerCase()}${priced.settings.count > 1 ? ` ×${priced.settings.count}` : ''}`;

    const [row] = await this.sql<StartRow>(
      `WITH gate AS (
         SELECT a.tier, a.available, t.queue_class, (t.features @> $5::text[] AND t.max_resolution >= $6) AS allowed
           FROM accounts a JOIN tiers t ON t.code = CASE WHEN a.plan_status = 'PAST_DUE' THEN 'FREE' ELSE a.tier END WHERE a.id = $1
       ), allowed AS (SELECT * FROM gate WHERE allowed),
       d AS (
         SELECT r.* FROM allowed, LATERAL ledger_debit($1, $2, 'DEBIT', $3, $4::uuid, NULL, $7, NULL, $8) r
       ), job AS (
         INSERT INTO generation_jobs (id, account_id, status, type, settings, prompt, cost_class, credits, price_book_version,
                                      quote_id, queue_class, queue_rank, created_at)
         SELECT $4::uuid, $1, 'QUEUED', $9, $10, $11, $12, $2, $13, $14, allowed.queue_class,
                ${QUEUE_RANK_SQL.replace('%s', 'allowed.queue_class')}, $8
           FROM d, allowed WHERE d.ok
         RETURNING *
       ), idem AS (
         INSERT INTO idempotency_keys (scope, key, operation, request_hash, response, created_at)
         SELECT $1, $7, 'startGeneration', $15, jsonb_build_object('jobId', job.id), $8 FROM job WHERE $7::text IS NOT NULL
       )
       SELECT gate.tier, gate.allowed, gate.available AS available_now, d.ok, d.balance, d.threshold,
              job.queue_class, job.id AS job_id, (SELECT string_agg((${jobEventSql('j')})::text, '') FROM job j) AS notified
         FROM gate LEFT JOIN d ON true LEFT JOIN job ON true`,
      [
        accountId, credits, description, jobId, needs, side, req.idempotencyKey ?? null, now,
        priced.settings.type, JSON.stringify(priced.settings), req.prompt, costClass, version, quote?.id ?? null, hash ?? null,
      ],
      'start_generation',
    );
    if (!row) throw new Error(`account ${accountId} does not exist`);

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
