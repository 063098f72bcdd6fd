import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';

import { isUuid } from '../../common/ids';

export class NotificationService {
  constructor(private readonly db: DataSource, private readonly clock: Clock) {}

  /** Marks the caller's unread notifications read: these ids (others' ids are ignored), or all. */
  async markRead(accountId: string, ids?: string[]): Promise<number> {
    const now = this.clock.now();
    if (ids) {
      const valid = ids.filter(isUuid);
      if (!valid.length) return 0;
      const rows = (await this.db.query(
        `UPDATE notifications SET read_at = $3 WHERE account_id = $1 AND id = ANY($2::uuid[]) AND read_at IS NULL RETURNING id`,
        [accountId, valid, now],
      )) as [unknown[], number];
      return rows[1];
    }
    const rows = (await this.db.query(`UPDATE notifications SET read_at = $2 WHERE account_id = $1 AND read_at IS NULL RETURNING id`, [accountId, now])) as [
      unknown[],
      number,
    ];
    return rows[1];
  }
}
