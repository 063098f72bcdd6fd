/**
 * Runs at most `limit` tasks at a time per key; the rest wait in arrival order. Used to let an
 * instance send only a few changes per account to the database at once: requests for a busy
 * account wait here, in memory, instead of each holding a pool connection while PostgreSQL
 * queues them on the account row lock (which costs it CPU per waiter). A small limit above one
 * keeps the next change already waiting at the lock when the current one commits.
 */
export class KeyedQueue {
  private readonly lanes = new Map<string, { running: number; waiting: (() => void)[] }>();

  constructor(private readonly limit = 2) {}

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { running: 0, waiting: [] };
      this.lanes.set(key, lane);
    }
    if (lane.running >= this.limit) await new Promise<void>((resolve) => lane!.waiting.push(resolve));
    lane.running++;
    try {
      return await task();
    } finally {
      lane.running--;
      const next = lane.waiting.shift();
      if (next) next();
      else if (lane.running === 0) this.lanes.delete(key);
    }
  }
}
