/**
 * The current price book: the highest published version. Cached per instance; a publish
 * reaches every instance through the event bus at commit, and the cache also expires.
 */
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import { transaction } from '../../common/db/transaction';
import type { EventBus } from '../../common/events/event-bus';
import { publishInTx } from '../../common/events/events';
import { cheapestPrice, validateRules, type PriceRules } from './price-rules';

export interface PriceBook {
  version: number;
  rules: PriceRules;
  note: string;
  publishedAt: Date;
}

const TTL_MS = 30_000;

export class PriceBookService {
  private cached?: { book: Promise<PriceBook>; at: number };

  constructor(private readonly db: DataSource, private readonly clock: Clock, events: EventBus) {
    events.onEvent((e) => {
      if (e.type === 'pricebook') this.cached = undefined;
    });
  }

  current(): Promise<PriceBook> {
    if (!this.cached || Date.now() - this.cached.at > TTL_MS) {
      const book = this.load();
      this.cached = { book, at: Date.now() };
      book.catch(() => (this.cached = undefined));
    }
    return this.cached.book;
  }

  private async load(): Promise<PriceBook> {
    const [row] = (await this.db.query(
      `SELECT version, rules, note, published_at FROM price_books ORDER BY version DESC LIMIT 1`,
    )) as { version: number; rules: PriceRules; note: string; published_at: Date }[];
    if (!row) throw new Error('no price book has been published');
    const book = { version: row.version, rules: row.rules, note: row.note, publishedAt: row.published_at };
    return book;
  }

  /** Publishes a new version; returns the validation errors instead when there are any. */
  async publish(actor: string, rules: PriceRules, note: string): Promise<{ book?: PriceBook; errors: string[] }> {
    const errors = validateRules(rules);
    if (errors.length) return { errors };
    const book = await transaction(this.db, async (tx) => {
      await tx.query(`SELECT pg_advisory_xact_lock(hashtext('credits:price_books'))`); // versions are taken one at a time (the runtime role may not lock the table)
      const [row] = await tx.query<{ version: number; published_at: Date }>(
        `INSERT INTO price_books (version, rules, note, published_by, published_at, cheapest_credits)
         SELECT coalesce(max(version), 0) + 1, $1, $2, $3, $4, $5 FROM price_books RETURNING version, published_at`,
        [JSON.stringify(rules), note, actor, this.clock.now(), cheapestPrice(rules)],
      );
      await publishInTx(tx, { type: 'pricebook', accountId: '*', version: row.version });
      return { version: row.version, rules, note, publishedAt: row.published_at };
    });
    this.cached = undefined;
    return { book, errors: [] };
  }
}
