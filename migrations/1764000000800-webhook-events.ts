import { MigrationInterface, QueryRunner } from 'typeorm';

/** Provider webhook events already applied: each is applied once, in the transaction of its effect. */
export class WebhookEvents1764000000800 implements MigrationInterface {
  name = 'WebhookEvents1764000000800';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE webhook_events (
        provider text NOT NULL,
        event_id text NOT NULL,
        type text NOT NULL,
        received_at timestamptz NOT NULL,
        PRIMARY KEY (provider, event_id)
      )`);
    await q.query(`ALTER TABLE refund_requests ADD COLUMN provider_confirmed_at timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE refund_requests DROP COLUMN provider_confirmed_at`);
    await q.query(`DROP TABLE webhook_events`);
  }
}
