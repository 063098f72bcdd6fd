/**
 * The one clock every time rule reads (quote expiry, refund window, renewals, lot expiry).
 * Domain code asks the clock, never Date.now(). With TEST_CLOCK=1 it can be moved forward.
 */
export class Clock {
  private offsetMs = 0;

  constructor(readonly adjustable = false) {}

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

  /** Sets the offset (another instance moved the shared test clock). */
  setOffset(ms: number): void {
    if (ms > this.offsetMs) this.offsetMs = ms;
  }

  get offset(): number {
    return this.offsetMs;
  }
}
