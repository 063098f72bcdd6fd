/**
 * Holds work back while the database restarts: during(fn) runs fn unless the gate is closed
 * (then waits for it to open); close() shuts the gate and waits until everything running
 * inside has finished; open() lets the waiting work go on.
 */
export class Gate {
  private inside = 0;
  private closed?: Promise<void>;
  private release?: () => void;
  private drained?: () => void;

  async during<T>(fn: () => Promise<T>): Promise<T> {
    while (this.closed) await this.closed;
    this.inside++;
    try {
      return await fn();
    } finally {
      this.inside--;
      if (this.inside === 0) this.drained?.();
    }
  }

  async close(): Promise<void> {
    this.closed = new Promise((r) => (this.release = r));
    while (this.inside > 0) await new Promise<void>((r) => (this.drained = r));
  }

  open(): void {
    const release = this.release;
    this.closed = undefined;
    this.release = undefined;
    release?.();
  }
}
