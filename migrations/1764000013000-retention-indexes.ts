import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What the retention sweep reads (idempotency records by age, whether a quote is a job's) and
 * what it keeps: the instant before which it may have deleted each kind (src/common/db/retention.ts).
 */
export class RetentionIndexes1764000013000 implements MigrationInterface {
  name = 'RetentionIndexes1764000013000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at)`);
    await q.query(`CREATE INDEX generation_jobs_quote ON generation_jobs (quote_id) WHERE quote_id IS NOT NULL`);
    await q.query(`CREATE TABLE retention_horizons (kind text PRIMARY KEY, deleted_before timestamptz NOT NULL)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE retention_horizons`);
    await q.query(`DROP INDEX generation_jobs_quote`);
    await q.query(`DROP INDEX idempotency_keys_age`);
  }
}
