/**
 * The worker protocol. Each transition is one conditional UPDATE of the job row, so a
 * concurrent duplicate (two failure reports, say) waits for the first and then finds the job
 * no longer RUNNING. A failure refunds the job's credits in the same transaction, once. A job
 * whose owner asked to stop it (cancel_requested) ends CANCELED when the worker stops it —
 * acknowledgeCancel, a failure report, or its lease running out — and gives back only its
 * unrendered share; completed anyway, it is SUCCEEDED and charged in full.
 */
import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import type { Clock } from '../../common/clock';
import { transaction, type Tx } from '../../common/db/transaction';
import { jobEventSql } from '../../common/events/events';
import type { LedgerService } from '../ledger/ledger.service';
import { jobError } from './generation.errors';
import { unrenderedShare, type JobRow } from './generation-job.type';
import { isUuid } from '../../common/ids';
import { JobStatus } from './job-status.enum';

/** SQL (a CTE body) that keeps a JOB_FINISHED notification for finished rows of `t` (templates jobSucceeded, jobFailed of notices.ts). */
function finishedNoteSql(t: string): string {
  return `INSERT INTO notifications (account_id, kind, template, params, job_id, created_at)
    SELECT ${t}.account_id, 'JOB_FINISHED',
           CASE ${t}.status WHEN 'SUCCEEDED' THEN 'jobSucceeded' ELSE 'jobFailed' END,
           CASE ${t}.status
             WHEN 'SUCCEEDED' THEN jsonb_build_object('type', ${t}.type, 'results', cardinality(${t}.result_urls))
             ELSE jsonb_build_object('type', ${t}.type, 'reason', ${t}.failure_reason, 'credits', ${t}.credits)
           END, ${t}.id, ${t}.finished_at
      FROM ${t} WHERE ${t}.status IN ('SUCCEEDED', 'FAILED')`;
}

export const MAX_RESULT_URLS = 16;
export const MAX_RESULT_URL_LENGTH = 2048;

export class WorkerService {
  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly ledger: LedgerService,
    private readonly leaseSeconds: number,
    private readonly log: Logger,
  ) {}

  /** The next QUEUED job by queue class (INSTANT first), then age; now RUNNING for this worker. */
  async claim(workerId: string): Promise<JobRow | undefined> {
    const now = this.clock.now();
    const [job] = (await this.db.query(
      `WITH next AS (
         SELECT id FROM generation_jobs WHERE status = 'QUEUED'
          ORDER BY queue_rank, created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED
       ), claimed AS (
         UPDATE generation_jobs j SET status = 'RUNNING', worker_id = $1, started_at = $2, last_report_at = $2
           FROM next WHERE j.id = next.id RETURNING j.*
       ) SELECT claimed.*, ${jobEventSql('claimed')} AS notified FROM claimed`,
      [workerId, now],
    )) as JobRow[];
    return job;
  }

  async progress(workerId: string, jobId: string, progress: number): Promise<JobRow> {
    if (!Number.isInteger(progress) || progress < 0 || progress > 100) throw jobError('BAD_USER_INPUT', 'progress must be 0 to 100');
    return this.transition(workerId, jobId, `progress = $3, last_report_at = $4`, `progress <= $3`, [progress, this.clock.now()], (job) =>
      job.status === JobStatus.RUNNING ? `progress never goes backwards (now ${job.progress})` : undefined,
    );
  }

  async complete(workerId: string, jobId: string, resultUrls: string[]): Promise<JobRow> {
    if (resultUrls.length > MAX_RESULT_URLS) throw jobError('BAD_USER_INPUT', `at most ${MAX_RESULT_URLS} result URLs`);
    for (const u of resultUrls) {
      if (u.length > MAX_RESULT_URL_LENGTH || !/^https?:\/\/[^\s\u0000]+$/.test(u)) throw jobError('BAD_USER_INPUT', `not an http(s) URL: ${u.slice(0, 100)}`);
    }
    const now = this.clock.now();
    return this.transition(workerId, jobId, `status = 'SUCCEEDED', progress = 100, result_urls = $3, finished_at = $4, last_report_at = $4`, 'true', [resultUrls, now]);
  }

  /** FAILED, and the credits come back in the same transaction; a job asked to stop is CANCELED instead (its unrendered share back). */
  async fail(workerId: string, jobId: string, reason: string): Promise<JobRow> {
    const text = reason.trim().slice(0, 1000);
    if (!text) throw jobError('BAD_USER_INPUT', 'reason must not be blank');
    if (text.includes('\u0000')) throw jobError('BAD_USER_INPUT', 'reason must not contain NUL characters');
    return transaction(this.db, async (tx) => {
      const job = await this.transitionIn(
        tx, workerId, jobId,
        `status = CASE WHEN cancel_requested THEN 'CANCELED' ELSE 'FAILED' END, failure_reason = CASE WHEN cancel_requested THEN NULL ELSE $3 END,
         finished_at = $4, refunded = NOT cancel_requested`,
        'true', [text, this.clock.now()],
      );
      if (job.status === JobStatus.CANCELED) return this.stopped(tx, job);
      await this.refund(tx, job, `Refund: generation failed (${text.slice(0, 80)})`);
      return job;
    });
  }

  /** The worker stopped a job its owner asked to stop: CANCELED, and the unrendered share comes back. */
  async acknowledgeCancel(workerId: string, jobId: string): Promise<JobRow> {
    return transaction(this.db, async (tx) => {
      const job = await this.transitionIn(tx, workerId, jobId, `status = 'CANCELED', finished_at = $3, refunded = false`, 'cancel_requested', [this.clock.now()], (j) =>
        j.status === JobStatus.RUNNING ? 'No one asked to stop this job' : undefined,
      );
      return this.stopped(tx, job);
    });
  }

  /** Gives back a stopped job's unrendered share (nothing when it was all rendered). */
  private async stopped(tx: Tx, job: JobRow): Promise<JobRow> {
    const share = unrenderedShare(job);
    if (share === 0) return job;
    const refund = await this.ledger.refundJob(tx, job.account_id, job.id, `Refund: generation stopped at ${job.progress}% (the unrendered ${100 - job.progress}%)`, share);
    if (!refund) throw new Error(`job ${job.id} has no debit to refund`);
    await tx.query('UPDATE generation_jobs SET refunded = true WHERE id = $1', [job.id]);
    return { ...job, refunded: true };
  }

  /**
   * Fails and refunds RUNNING jobs whose worker has not reported for the lease. Safe to run
   * on every instance at once: one holds the sweep lock, and each job is taken with SKIP LOCKED
   * and a status check, so it is failed and refunded exactly once. Returns the jobs it failed.
   */
  async sweepExpiredLeases(limit = 100): Promise<string[]> {
    return transaction(this.db, async (tx) => {
      const [lock] = await tx.query<{ got: boolean }>(`SELECT pg_try_advisory_xact_lock(hashtext('credits:lease-sweep')) AS got`);
      if (!lock.got) return [];
      const now = this.clock.now();
      const cutoff = new Date(now.getTime() - this.leaseSeconds * 1000);
      const expired = await tx.query<JobRow>(
        `WITH stale AS (
           SELECT id FROM generation_jobs WHERE status = 'RUNNING' AND last_report_at < $1
            ORDER BY last_report_at LIMIT $3 FOR UPDATE SKIP LOCKED
         ), failed AS (
           UPDATE generation_jobs j SET status = CASE WHEN j.cancel_requested THEN 'CANCELED' ELSE 'FAILED' END, finished_at = $2,
                  refunded = NOT j.cancel_requested,
                  failure_reason = CASE WHEN j.cancel_requested THEN NULL ELSE 'No report from the worker for ' || $4 || ' s: lease expired' END
             FROM stale WHERE j.id = stale.id AND j.status = 'RUNNING' RETURNING j.*
         ), note AS (${finishedNoteSql('failed')})
         SELECT failed.*, ${jobEventSql('failed')} AS notified FROM failed`,
        [cutoff, now, limit, String(this.leaseSeconds)],
      );
      for (const job of expired) {
        // A job asked to stop whose worker went silent stops as a cancel: its unrendered share comes back.
        if (job.status === JobStatus.CANCELED) await this.stopped(tx, job);
        else await this.refund(tx, job, 'Refund: the worker stopped reporting (lease expired)');
      }
      if (expired.length) this.log.warn({ jobs: expired.map((j) => j.id) }, 'failed and refunded jobs whose lease expired');
      return expired.map((j) => j.id);
    });
  }

  private async refund(tx: Tx, job: JobRow, description: string): Promise<void> {
    const refund = await this.ledger.refundJob(tx, job.account_id, job.id, description);
    if (!refund) throw new Error(`job ${job.id} has no debit to refund`);
  }

  private transition(workerId: string, jobId: string, set: string, extraCondition: string, params: unknown[], explain?: (job: JobRow) => string | undefined): Promise<JobRow> {
    return transaction(this.db, (tx) => this.transitionIn(tx, workerId, jobId, set, extraCondition, params, explain));
  }

  /** Applies `set` to the worker's RUNNING job, or explains why not (and changes nothing). */
  private async transitionIn(
    tx: Tx,
    workerId: string,
    jobId: string,
    set: string,
    extraCondition: string,
    params: unknown[],
    explain?: (job: JobRow) => string | undefined,
  ): Promise<JobRow> {
    if (!isUuid(jobId)) throw jobError('NOT_FOUND', 'No job has this id');
    const [job] = await tx.query<JobRow>(
      `WITH t AS (
         UPDATE generation_jobs SET ${set}
          WHERE id = $1 AND worker_id = $2 AND status = 'RUNNING' AND ${extraCondition} RETURNING *
       ), note AS (${finishedNoteSql('t')})
       SELECT t.*, ${jobEventSql('t')} AS notified FROM t`,
      [jobId, workerId, ...params],
    );
    if (job) return job;
    const [current] = await tx.query<JobRow & { worker_id: string | null }>('SELECT * FROM generation_jobs WHERE id = $1', [jobId]);
    if (!current) throw jobError('NOT_FOUND', 'No job has this id');
    if (current.worker_id !== null && current.worker_id !== workerId) throw jobError('FORBIDDEN', 'This job was claimed by another worker');
    throw jobError('INVALID_STATE', explain?.(current) ?? `The job is ${current.status}, not RUNNING`);
  }
}
