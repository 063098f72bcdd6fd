/**
 * Group work that arrives while the database is busy: at most `concurrency` batches run at
 * once; what arrives meanwhile waits and leaves together as the next batch (up to `maxSize`).
 * With no load a task runs at once, alone: batching adds no delay, only fewer round trips and
 * commits under load.
 *
 * `run` gets the tasks of a batch and returns one result per task, in order. When a batch of
 * several fails as a whole, each of its tasks is run again alone, so one bad task fails only
 * itself.
 */
export class Batcher<T, R> {
  private readonly waiting: { task: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  private running = 0;

  constructor(
    private readonly run: (tasks: T[]) => Promise<R[]>,
    private readonly concurrency = 2,
    private readonly maxSize = 32,
  ) {}

  submit(task: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ task, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.concurrency && this.waiting.length) {
      const batch = this.waiting.splice(0, this.maxSize);
      this.running++;
      void this.execute(batch).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  private async execute(batch: typeof this.waiting): Promise<void> {
    try {
      const results = await this.run(batch.map((b) => b.task));
      batch.forEach((b, i) => b.resolve(results[i]));
    } catch (e) {
      if (batch.length === 1) return batch[0].reject(e);
      for (const b of batch) {
        try {
          b.resolve((await this.run([b.task]))[0]);
        } catch (err) {
          b.reject(err);
        }
      }
    }
  }
}
