import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Versioned price books, persisted quotes, and generation jobs (the jobs table is the queue:
 * claimed with FOR UPDATE SKIP LOCKED by queue class, then age).
 */
export class QuotesAndJobs1764000000300 implements MigrationInterface {
  name = 'QuotesAndJobs1764000000300';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE price_books (
        version int PRIMARY KEY CHECK (version > 0),
        rules jsonb NOT NULL,
        note text NOT NULL DEFAULT '',
        published_by text,
        published_at timestamptz NOT NULL
      )`);
    await q.query(`CREATE TRIGGER price_books_immutable BEFORE UPDATE OR DELETE ON price_books
                   FOR EACH ROW EXECUTE FUNCTION refuse_ledger_change()`);
    const v1 = {
      largeSizePixels: 1024 * 1024,
      classes: {
        IMAGE_STANDARD: { base: 1, perExtraSecond: 0, cap: 2, largeSize: 1, premiumModel: 1, premiumQuality: 0 },
        IMAGE_HIGH: { base: 3, perExtraSecond: 0, cap: 4, largeSize: 1, premiumModel: 1, premiumQuality: 0 },
        IMAGE_ULTRA: { base: 5, perExtraSecond: 0, cap: 8, largeSize: 2, premiumModel: 2, premiumQuality: 0 },
        VIDEO_SHORT: { base: 5, perExtraSecond: 1, cap: 10, largeSize: 1, premiumModel: 0, premiumQuality: 0 },
        VIDEO_STANDARD: { base: 10, perExtraSecond: 2, cap: 20, largeSize: 2, premiumModel: 0, premiumQuality: 0 },
        VIDEO_PREMIUM: { base: 20, perExtraSecond: 2, cap: null, largeSize: 5, premiumModel: 10, premiumQuality: 10 },
      },
    };
    await q.query(`INSERT INTO price_books (version, rules, note, published_by, published_at) VALUES (1, $1, 'Launch prices', 'migration', now())`, [
      JSON.stringify(v1),
    ]);

    await q.query(`
      CREATE TABLE quotes (
        id uuid PRIMARY KEY,
        account_id text NOT NULL REFERENCES accounts (id),
        settings jsonb NOT NULL,
        settings_key text NOT NULL,
        price_book_version int NOT NULL REFERENCES price_books (version),
        credits int NOT NULL CHECK (credits > 0),
        cost_class text NOT NULL,
        breakdown jsonb NOT NULL,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
      )`);
    await q.query(`CREATE INDEX quotes_expiry ON quotes (expires_at)`);

    await q.query(`
      CREATE TABLE generation_jobs (
        id uuid PRIMARY KEY,
        account_id text NOT NULL REFERENCES accounts (id),
        status text NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELED')),
        type text NOT NULL CHECK (type IN ('IMAGE', 'VIDEO')),
        settings jsonb NOT NULL,
        prompt text NOT NULL CHECK (char_length(prompt) BETWEEN 1 AND 2000),
        cost_class text NOT NULL,
        credits int NOT NULL CHECK (credits > 0),
        price_book_version int NOT NULL REFERENCES price_books (version),
        quote_id uuid REFERENCES quotes (id),
        queue_class text NOT NULL CHECK (queue_class IN ('STANDARD', 'PRIORITY', 'FAST', 'INSTANT')),
        queue_rank int NOT NULL,
        progress int NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
        worker_id text,
        result_urls text[] NOT NULL DEFAULT '{}',
        failure_reason text,
        refunded boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL,
        started_at timestamptz,
        finished_at timestamptz,
        last_report_at timestamptz,
        CHECK ((status = 'QUEUED') = (started_at IS NULL) OR status = 'CANCELED'),
        CHECK ((status IN ('SUCCEEDED', 'FAILED', 'CANCELED')) = (finished_at IS NOT NULL))
      )`);
    // The queue: next QUEUED job by class (rank 0 = INSTANT first), then age.
    await q.query(`CREATE INDEX generation_jobs_queue ON generation_jobs (queue_rank, created_at, id) WHERE status = 'QUEUED'`);
    await q.query(`CREATE INDEX generation_jobs_leases ON generation_jobs (last_report_at) WHERE status = 'RUNNING'`);
    await q.query(`CREATE INDEX generation_jobs_account_page ON generation_jobs (account_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX generation_jobs_account_status_page ON generation_jobs (account_id, status, created_at DESC, id DESC)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE generation_jobs`);
    await q.query(`DROP TABLE quotes`);
    await q.query(`DROP TABLE price_books`);
  }
}
