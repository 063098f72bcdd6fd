/**
 * Group work that arrives while the database is busy: at most `concurrency` batches run at
 * once; what arrives meanwhile waits and leaves together as the next batch (up to `maxSize`).
 * With no load a task runs at once, alone: batching adds no delay, only fewer round trips and
 * commits under load.
 *
 * With `keyOf`, tasks of one key (an account) never run in two batches at once: a task whose
 * key is in a running batch waits for the next one, keeping arrival order within its key.
 * Many tasks of one key may share a batch.
 *
 * `run` gets the tasks of a batch and returns one result per task, in order. When a batch of
 * several fails as a whole, each of its tasks is run again alone, so one bad task fails only
 * itself.
 */
export interface BatcherOptions<T> {
  concurrency?: number;
  maxSize?: number;
  keyOf?: (task: T) => string;
}

interface Waiting<T, R> {
  task: T;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

export class Batcher<T, R> {
  private waiting: Waiting<T, R>[] = [];
  private readonly running = new Set<Set<string>>();
  private readonly concurrency: number;
  private readonly maxSize: number;
  private readonly keyOf?: (task: T) => string;

  constructor(private readonly run: (tasks: T[]) => Promise<R[]>, options: BatcherOptions<T> = {}) {
    this.concurrency = options.concurrency ?? 2;
    this.maxSize = options.maxSize ?? 32;
    this.keyOf = options.keyOf;
  }

  submit(task: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ task, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.running.size < this.concurrency && this.waiting.length) {
      const keys = new Set<string>();
      let batch: Waiting<T, R>[];
      if (!this.keyOf) {
        batch = this.waiting.splice(0, this.maxSize);
      } else {
        const busy = new Set<string>();
        for (const r of this.running) for (const k of r) busy.add(k);
        batch = [];
        const rest: Waiting<T, R>[] = [];
        for (const w of this.waiting) {
          const k = this.keyOf(w.task);
          if (batch.length < this.maxSize && !busy.has(k)) {
            batch.push(w);
            keys.add(k);
          } else {
            rest.push(w);
          }
        }
        if (!batch.length) return;
        this.waiting = rest;
      }
      this.running.add(keys);
      void this.execute(batch).finally(() => {
        this.running.delete(keys);
        this.pump();
      });
    }
  }

  private async execute(batch: Waiting<T, R>[]): Promise<void> {
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
