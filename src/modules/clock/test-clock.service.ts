/**
 * The test clock (TEST_CLOCK=1, never in production): one offset shared by every instance
 * through the database and the event bus. Advancing it runs, before returning, the work that
 * fell due: lot expiries (and, as they land, renewals).
 */
import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import type { Clock } from '../../common/clock';
import { transaction } from '../../common/db/transaction';
import type { EventBus } from '../../common/events/event-bus';
import { publishInTx } from '../../common/events/events';

export class TestClockService {
  constructor(private readonly db: DataSource, private readonly clock: Clock, events: EventBus, private readonly log: Logger) {
    events.onEvent((e) => {
      if (e.type === 'clock') this.clock.setOffset(e.offsetMs);
    });
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
