import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Live events as logical decoding messages (issue 16): pgoutput needs a publication to decode
 * with; this one publishes no tables, so each instance's reader gets the messages only. An owner
 * not allowed to create it leaves events on pg_notify (src/common/events/event-transport.ts).
 */
export class EventPublication1764000021000 implements MigrationInterface {
  name = 'EventPublication1764000021000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      DO $$
      BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'credits_events') THEN
          CREATE PUBLICATION credits_events;
        END IF;
      EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'may not create the publication credits_events: live events stay on pg_notify';
      END $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP PUBLICATION IF EXISTS credits_events`);
  }
}
