import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import { badUserInput } from '../../common/errors/graphql-errors';
import { isUuid } from '../../common/ids';
import type { NotificationRow } from './notification.type';

/** Ids one call may mark read. */
const MAX_IDS = 1000;

export class NotificationService {
  constructor(private readonly db: DataSource, private readonly clock: Clock) {}

  /** Marks the caller's unread notifications read: these ids (others' ids are ignored), or all; returns the count. */
  async markRead(accountId: string, ids?: string[]): Promise<number> {
    return (await this.read(accountId, ids)).length;
  }

  /** The same, returning the rows it marked, as they are now. */
  async read(accountId: string, ids?: string[]): Promise<NotificationRow[]> {
    if (ids && ids.length > MAX_IDS) throw badUserInput(`at most ${MAX_IDS} ids at a time`, ['ids']);
    const now = this.clock.now();
    if (ids && !ids.some(isUuid)) return [];
    const [rows] = (await this.db.query(
      `UPDATE notifications SET read_at = $2 WHERE account_id = $1 AND read_at IS NULL AND ($3::uuid[] IS NULL OR id = ANY($3::uuid[]))
       RETURNING *`,
      [accountId, now, ids ? ids.filter(isUuid) : null],
    )) as [NotificationRow[], number];
    return rows.sort((a, b) => b.created_at.getTime() - a.created_at.getTime() || (a.id < b.id ? 1 : -1));
  }

  /** One of the account's notifications (undefined for any other id). */
  async get(accountId: string, id: string): Promise<NotificationRow | undefined> {
    if (!isUuid(id)) return undefined;
    const rows = (await this.db.query('SELECT * FROM notifications WHERE account_id = $1 AND id = $2', [accountId, id])) as NotificationRow[];
    return rows[0];
  }

  async unreadCount(accountId: string): Promise<number> {
    const [r] = (await this.db.query('SELECT count(*)::int AS n FROM notifications WHERE account_id = $1 AND read_at IS NULL', [accountId])) as { n: number }[];
    return r.n;
  }
}
