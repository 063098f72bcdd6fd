/**
 * Background work of an instance: the lease sweep and the work due with time (lot expiries),
 * which every instance runs and which are safe to run concurrently, and, with SIMULATED_WORKER=1, an in-process worker that takes queued jobs
 * through the same service paths as real workers and finishes them within seconds.
 */
import type { Logger } from 'pino';
import type { Metrics } from '../../common/metrics/metrics';
import type { JobRow } from './generation-job.type';
import type { WorkerService } from './worker.service';

export const SIMULATED_WORKER_ID = 'simulated-worker';

export class JobRunners {
  private stopped = false;
  private readonly loops: Promise<void>[] = [];
  private readonly sleepers = new Set<() => void>();
  /** The simulated workers' sleeps while the queue was empty: a queued job cuts them short. */
  private readonly idleWorkers = new Set<() => void>();

  constructor(
    private readonly workers: WorkerService,
    private readonly log: Logger,
    private readonly opts: { simulatedWorker: boolean; simulatedWorkers?: number; sweepIntervalMs: number; stepMs?: number; dueWork?: () => Promise<void>; metrics: Metrics },
  ) {}

  start(): void {
    this.loops.push(
      this.every(this.opts.sweepIntervalMs, async () => {
        await this.opts.metrics.sweep('leases', () => this.workers.sweepExpiredLeases());
        await this.opts.dueWork?.();
      }),
    );
    // SIMULATED_WORKER_CONCURRENCY jobs at a time, each a loop of its own (as that many GPU workers).
    if (this.opts.simulatedWorker) for (let i = 0; i < (this.opts.simulatedWorkers ?? 1); i++) this.loops.push(this.simulate());
  }

  /** Called when a job was queued on this instance, so the simulated worker need not wait. */
  nudge(): void {
    for (const wake of [...this.idleWorkers]) wake();
  }

  /** A sleep that stop() (and, for the worker, nudge()) cuts short. */
  private sleep(ms: number, worker = false): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        this.idleWorkers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
      if (worker) this.idleWorkers.add(done);
    });
  }

  private async every(ms: number, task: () => Promise<void>): Promise<void> {
    while (!this.stopped) {
      await this.sleep(ms);
      if (this.stopped) break;
      await task().catch((e) => this.log.error({ err: e }, 'background task failed'));
    }
  }

  private async simulate(): Promise<void> {
    const step = this.opts.stepMs ?? 500;
    while (!this.stopped) {
      let job: JobRow | undefined;
      try {
        job = await this.workers.claim(SIMULATED_WORKER_ID);
        if (!job) {
          await this.sleep(500, true);
          continue;
        }
        await this.sleep(step);
        // Like a real worker, it learns of a stop request from its report's answer, and stops there.
        const reported = await this.workers.progress(SIMULATED_WORKER_ID, job.id, 50);
        if (reported.cancel_requested) {
          await this.workers.acknowledgeCancel(SIMULATED_WORKER_ID, job.id);
          continue;
        }
        await this.sleep(step);
        const n = job.type === 'IMAGE' ? ((job as JobRow & { settings?: { count?: number } }).settings?.count ?? 1) : 1;
        const ext = job.type === 'IMAGE' ? 'png' : 'mp4';
        const urls = Array.from({ length: n }, (_, i) => `https://results.example.invalid/${job!.id}/${i + 1}.${ext}`);
        await this.workers.complete(SIMULATED_WORKER_ID, job.id, urls);
      } catch (e) {
        if (!this.stopped) this.log.error({ err: e, job: job?.id }, 'simulated worker step failed');
        await this.sleep(500);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const wake of [...this.sleepers]) wake();
    await Promise.allSettled(this.loops);
  }
}
