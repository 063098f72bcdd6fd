/**
 * Keyset pagination, newest first, over (created_at, id). `where` is a SQL condition on the
 * table using $1..$n from `params`; a matching (…, created_at DESC, id DESC) index keeps it fast.
 */
import type { DataSource } from 'typeorm';
import type { ConnectionShape } from './connection.type';
import { DEFAULT_PAGE_SIZE } from './connection.args';
import { decodeCursor, encodeCursor, type IdKind } from './cursor';

/** The kind of each paginated table's id column, read from the catalog once per table and database. */
const idKinds = new WeakMap<DataSource, Map<string, Promise<IdKind | undefined>>>();

function idKindOf(db: DataSource, table: string): Promise<IdKind | undefined> {
  let byTable = idKinds.get(db);
  if (!byTable) idKinds.set(db, (byTable = new Map()));
  let kind = byTable.get(table);
  if (!kind) {
    kind = db
      .query(`SELECT format_type(atttypid, NULL) AS t FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'id' AND NOT attisdropped`, [table])
      .then((rows: { t: string }[]) => (rows[0]?.t === 'uuid' ? 'uuid' : rows[0]?.t === 'bigint' ? 'bigint' : undefined));
    kind.catch(() => byTable!.delete(table)); // asked again next time
    byTable.set(table, kind);
  }
  return kind;
}

export interface PageRequest {
  first?: number | null;
  after?: string | null;
}

export async function paginate<Row extends { created_at: Date; id: string }, Node>(
  db: DataSource,
  opts: { table: string; where: string; params: unknown[]; page: PageRequest; map: (row: Row) => Node; columns?: string },
): Promise<ConnectionShape<Node>> {
  const first = opts.page.first ?? DEFAULT_PAGE_SIZE;
  const params = [...opts.params];
  let where = opts.where;
  if (opts.page.after) {
    // The cursor's parts are checked against the table's id kind before they reach SQL, so a
    // crafted cursor is BAD_USER_INPUT here, never a data exception in the database.
    const k = decodeCursor(opts.page.after, 'after', await idKindOf(db, opts.table));
    params.push(k.createdAt, k.id);
    where += ` AND (created_at, id) < ($${params.length - 1}, $${params.length})`;
  }
  params.push(first + 1);
  const rows: Row[] = await db.query(
    `SELECT ${opts.columns ?? '*'} FROM ${opts.table} WHERE ${where} ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
    params,
  );
  const page = rows.slice(0, first);
  const edges = page.map((r) => ({ cursor: encodeCursor({ createdAt: r.created_at, id: String(r.id) }), node: opts.map(r) }));
  const connection = {
    edges,
    pageInfo: {
      hasNextPage: rows.length > first,
      hasPreviousPage: Boolean(opts.page.after),
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges[edges.length - 1]?.cursor ?? null,
    },
  };
  return Object.defineProperty(connection, 'totalCount', {
    enumerable: true,
    get: async () => {
      const [c] = await db.query(`SELECT count(*)::int AS n FROM ${opts.table} WHERE ${opts.where}`, opts.params);
      return c.n as number;
    },
  }) as ConnectionShape<Node>;
}
