import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The shared test clock may start from a fixed instant (TEST_CLOCK_START), earlier than the
 * real time: its offset may be negative, and the instant it started from is kept so that only
 * the first instance on a database sets it.
 */
export class TestClockStart1764000005000 implements MigrationInterface {
  name = 'TestClockStart1764000005000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE test_clock DROP CONSTRAINT test_clock_offset_ms_check`);
    await q.query(`ALTER TABLE test_clock ADD COLUMN started_at timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE test_clock DROP COLUMN started_at`);
    await q.query(`UPDATE test_clock SET offset_ms = greatest(offset_ms, 0)`);
    await q.query(`ALTER TABLE test_clock ADD CONSTRAINT test_clock_offset_ms_check CHECK (offset_ms >= 0)`);
  }
}
