/**
 * The one clock every time rule reads (quote expiry, refund window, renewals, lot expiry).
 * Domain code asks the clock, never Date.now(). With TEST_CLOCK=1 it can be moved forward;
 * with TEST_CLOCK_START (development and tests) it starts from a fixed instant and runs on
 * from there, so a test gives the same result on every calendar date.
 */
export class Clock {
  private offsetMs: number;

  constructor(readonly adjustable = false, readonly startAt?: Date) {
    this.offsetMs = startAt ? startAt.getTime() - Date.now() : 0;
  }

  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }

  /** Moves the clock forward; only for the test clock. */
  advance(ms: number): Date {
    if (!this.adjustable) throw new Error('the test clock is not enabled');
    if (!(ms >= 0)) throw new Error('the clock only moves forward');
    this.offsetMs += ms;
    return this.now();
  }

  /** Takes a later offset (another instance moved the shared test clock); a clock that is not adjustable never moves. */
  setOffset(ms: number): void {
    if (!this.adjustable) throw new Error('the test clock is not enabled');
    if (ms > this.offsetMs) this.offsetMs = ms;
  }

  /** Takes the shared test clock's offset as it is (at start: it may be earlier than ours). */
  adoptOffset(ms: number): void {
    this.offsetMs = ms;
  }

  get offset(): number {
    return this.offsetMs;
  }
}
