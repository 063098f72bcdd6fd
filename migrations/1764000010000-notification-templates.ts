import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Notifications are kept as a template and its parameters, rendered by one module
 * (src/modules/notifications/notices.ts), instead of a sentence written where they were made
 * (TypeScript in five places and PL/pgSQL in two). Rows kept before keep their text as the
 * parameter of the `text` template.
 */
export class NotificationTemplates1764000010000 implements MigrationInterface {
  name = 'NotificationTemplates1764000010000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE notifications ADD COLUMN template text, ADD COLUMN params jsonb`);
    await q.query(`UPDATE notifications SET template = 'text', params = jsonb_build_object('text', message)`);
    await q.query(`ALTER TABLE notifications ALTER COLUMN template SET NOT NULL, ALTER COLUMN params SET NOT NULL, DROP COLUMN message`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE notifications ADD COLUMN message text`);
    await q.query(`UPDATE notifications SET message = CASE WHEN template = 'text' THEN params->>'text' ELSE template || ' ' || params::text END`);
    await q.query(`ALTER TABLE notifications ALTER COLUMN message SET NOT NULL, DROP COLUMN template, DROP COLUMN params`);
  }
}
