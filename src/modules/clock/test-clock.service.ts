/**
 * The test clock (TEST_CLOCK=1, never in production): one offset shared by every instance
 * through the database and the event bus. Advancing it runs, before returning, the work that
 * fell due: lot expiries (and, as they land, renewals). An instance without TEST_CLOCK=1 never
 * moves its clock, whatever the database or the events channel say.
 */
import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import type { Clock } from '../../common/clock';
import { transaction } from '../../common/db/transaction';
import type { EventBus } from '../../common/events/event-bus';
import { publishInTx } from '../../common/events/events';

export class TestClockService {
  constructor(private readonly db: DataSource, private readonly clock: Clock, events: EventBus, private readonly log: Logger) {
    // Only an instance with the test clock follows it, and from the database, not from the
    // event: a raw NOTIFY on the events channel can at most make it read the row again.
    if (clock.adjustable) {
      events.onEvent((e) => {
        if (e.type === 'clock') void this.follow();
      });
    }
  }

  /** Another instance moved the shared clock: take the offset the database holds. */
  private async follow(): Promise<void> {
    try {
      const [row] = (await this.db.query('SELECT offset_ms FROM test_clock WHERE id = 1')) as { offset_ms: string }[];
      if (row) this.clock.setOffset(Number(row.offset_ms));
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'could not read the shared test clock');
    }
  }

  /**
   * Takes the shared offset (at start). The first instance started with TEST_CLOCK_START on a
   * database whose test clock never ran sets where it starts; every other instance takes that.
   */
  async load(): Promise<void> {
    if (this.clock.startAt) {
      await this.db.query('UPDATE test_clock SET offset_ms = $1, started_at = $2 WHERE id = 1 AND started_at IS NULL AND offset_ms = 0', [
        Math.round(this.clock.offset),
        this.clock.startAt,
      ]);
    }
    const [row] = (await this.db.query('SELECT offset_ms FROM test_clock WHERE id = 1')) as { offset_ms: string }[];
    if (row) this.clock.adoptOffset(Number(row.offset_ms));
  }

  async advance(ms: number, dueWork: () => Promise<void>): Promise<Date> {
    if (!this.clock.adjustable) throw new Error('the test clock is not enabled');
    const offset = await transaction(this.db, async (tx) => {
      const [row] = await tx.query<{ offset_ms: string }>('UPDATE test_clock SET offset_ms = offset_ms + $1 WHERE id = 1 RETURNING offset_ms', [Math.round(ms)]);
      const value = Number(row.offset_ms);
      await publishInTx(tx, { type: 'clock', accountId: '*', offsetMs: value });
      return value;
    });
    this.clock.setOffset(offset);
    this.log.info({ now: this.clock.now() }, 'test clock moved');
    await dueWork();
    return this.clock.now();
  }
}
