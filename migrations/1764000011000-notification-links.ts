import { MigrationInterface, QueryRunner } from 'typeorm';

/** A notification links to what it is about: a purchase, a refund request (and, as before, a job). */
export class NotificationLinks1764000011000 implements MigrationInterface {
  name = 'NotificationLinks1764000011000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE notifications ADD COLUMN purchase_id uuid REFERENCES purchases(id), ADD COLUMN refund_request_id uuid REFERENCES refund_requests(id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE notifications DROP COLUMN purchase_id, DROP COLUMN refund_request_id`);
  }
}
