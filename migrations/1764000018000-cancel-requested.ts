import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Stopping a running job (issue 14): the owner asked the worker to stop it. A job CANCELED while
 * RUNNING is refunded its unrendered share only; `refunded` says whether anything came back.
 */
export class CancelRequested1764000018000 implements MigrationInterface {
  name = 'CancelRequested1764000018000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE generation_jobs ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE generation_jobs DROP COLUMN cancel_requested`);
  }
}
