import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The counters of the rate limits, shared by every instance (src/common/limits/rate-limits.ts):
 * the table rate-limiter-flexible's RateLimiterPostgres reads and upserts — key (limit:who),
 * points taken in the window, the window's end in ms since the epoch. Unlogged: a counter lost
 * in a crash of the database only restarts a window (it holds no money and no promise).
 */
export class RateLimits1764000014000 implements MigrationInterface {
  name = 'RateLimits1764000014000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE UNLOGGED TABLE rate_limits (key varchar(255) PRIMARY KEY, points integer NOT NULL DEFAULT 0, expire bigint)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE rate_limits`);
  }
}
