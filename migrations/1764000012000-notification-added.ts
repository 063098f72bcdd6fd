import { MigrationInterface, QueryRunner } from 'typeorm';

/** Every kept notification is announced to its account's subscribers (notificationAdded); the function is db/functions/notification_added.sql. */
export class NotificationAdded1764000012000 implements MigrationInterface {
  name = 'NotificationAdded1764000012000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TRIGGER notifications_added AFTER INSERT ON notifications FOR EACH ROW EXECUTE FUNCTION notification_added()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER notifications_added ON notifications`);
  }
}
