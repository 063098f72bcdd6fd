/**
 * Least privilege: the service's pool connects as a runtime role (a member of credits_runtime,
 * db/grants.sql) that may read and append to the ledger but owns nothing, so even a bug in the
 * app cannot rewrite history or switch the immutability triggers off: PostgreSQL refuses it
 * before any trigger runs (insufficient_privilege, 42501). The owner, which migrated the
 * template and migrates at every start, still can. Every other test file's server runs as the
 * same role (test/helpers/test-app.ts), so the whole suite shows the service needs no more.
 */
import { Client } from 'pg';
import { createDataSource } from '../../ormconfig';
import { Role } from '../../src/common/auth/role.enum';
import { migrate } from '../../src/common/db/migrate';
import { PurchaseCreditPackDocument, StartGenerationDocument } from '../graphql/generated';
import { asRuntimeRole, useTestApp } from '../helpers/test-app';

const t = useTestApp();
const LEDGER = ['ledger_entries', 'ledger_lot_movements'];

let runtime: Client;
let runtimeUser: string;

beforeAll(async () => {
  runtime = new Client({ connectionString: asRuntimeRole(t.app.databaseUrl), application_name: 'least-privilege' });
  await runtime.connect();
  runtimeUser = (await runtime.query('SELECT current_user AS u')).rows[0].u;
});

afterAll(async () => {
  await runtime?.end();
});

/** What `sql`, run as the runtime role, fails with (it must fail). */
async function refusal(sql: string): Promise<{ code: string; message: string }> {
  const e = await runtime.query(sql).then(
    () => undefined,
    (err: { code: string; message: string }) => err,
  );
  if (!e) throw new Error(`not refused: ${sql}`);
  return { code: e.code, message: e.message };
}

const ledgerCounts = () => t.app.one<{ e: number; m: number }>(`SELECT (SELECT count(*)::int FROM ledger_entries) AS e, (SELECT count(*)::int FROM ledger_lot_movements) AS m`);

describe('the service runs as the runtime role', () => {
  it('connects its pool as a member of credits_runtime that is neither the owner nor a superuser', async () => {
    const [pool] = (await t.app.server.services.db.query(
      `SELECT current_user AS u, r.rolsuper AS super, pg_has_role(current_user, 'credits_runtime', 'MEMBER') AS member
         FROM pg_roles r WHERE r.rolname = current_user`,
    )) as { u: string; super: boolean; member: boolean }[];
    const owner = await t.app.one<{ u: string }>(`SELECT tableowner AS u FROM pg_tables WHERE tablename = 'ledger_entries'`);
    expect(pool).toEqual({ u: runtimeUser, super: false, member: true });
    expect(owner.u).not.toBe(runtimeUser);
    // DATABASE_URL is the runtime role's, DATABASE_OWNER_URL the owner's (the auditor's).
    expect(new URL(t.app.config.databaseUrl!).username).toBe(runtimeUser);
    expect(t.app.config.databaseOwnerUrl).toBe(t.app.databaseUrl);
  });

  it('buys a pack, starts a generation and publishes a price book through the API as that role', async () => {
    const sub = 'lp-buyer';
    const buy = await t.app.gql(PurchaseCreditPackDocument, { input: { packCode: 'STARTER', idempotencyKey: 'lp-buy-1' } }, { sub });
    expect(buy.errors).toBeUndefined();
    expect(buy.data!.purchaseCreditPack.userErrors).toEqual([]);
    expect(buy.data!.purchaseCreditPack.purchase!.status).toBe('COMPLETED');
    const start = await t.app.gql(
      StartGenerationDocument,
      { input: { settings: { type: 'VIDEO', durationSeconds: 5 }, prompt: 'least privilege', idempotencyKey: 'lp-start-1' } },
      { sub },
    );
    expect(start.errors).toBeUndefined();
    expect(start.data!.startGeneration.userErrors).toEqual([]);
    expect(start.data!.startGeneration.job!.status).toBe('QUEUED');
    const kinds = await t.app.rows<{ kind: string; amount: number }>(`SELECT kind, amount FROM ledger_entries WHERE account_id = $1 ORDER BY id`, [sub]);
    expect(kinds.map((k) => k.kind)).toEqual(['GRANT', 'GRANT', 'DEBIT']);

    // Publishing takes its turn with an advisory lock (the role may not lock the table); the same rules again, as version 2.
    const book = await t.app.raw<{ priceBook: { largeSizePixels: number; classes: Record<string, unknown>[] } }>(
      `{ priceBook { largeSizePixels classes { costClass base perExtraSecond cap largeSize premiumModel premiumQuality } } }`,
    );
    const published = await t.app.raw<{ publishPriceBook: { priceBook: { version: number } | null; userErrors: unknown[] } }>(
      `mutation P($i: PublishPriceBookInput!) { publishPriceBook(input: $i) { priceBook { version } userErrors { code } } }`,
      { i: { ...book.data!.priceBook, note: 'same prices, published by the runtime role' } },
      { sub: 'lp-ops', role: Role.ADMIN },
    );
    expect(published.errors).toBeUndefined();
    expect(published.data!.publishPriceBook).toEqual({ priceBook: { version: 2 }, userErrors: [] });
  });
});

describe('what the runtime role is refused', () => {
  it('refuses UPDATE, DELETE and TRUNCATE of the ledger tables for want of the privilege (42501), before any trigger', async () => {
    const before = await ledgerCounts();
    expect(before.e).toBeGreaterThan(0);
    for (const table of LEDGER) {
      const denied = { code: '42501', message: `permission denied for table ${table}` }; // insufficient_privilege; the trigger would say "ledger rows are immutable"
      expect(await refusal(`UPDATE ${table} SET amount = amount`)).toEqual(denied);
      expect(await refusal(`DELETE FROM ${table}`)).toEqual(denied);
      expect(await refusal(`TRUNCATE ${table}`)).toEqual(denied);
      expect(await refusal(`TRUNCATE ${table} CASCADE`)).toEqual(denied);
      // Row locks need UPDATE too: nobody can hold a ledger row against the owner's audit.
      expect(await refusal(`SELECT 1 FROM ${table} LIMIT 1 FOR UPDATE`)).toEqual(denied);
    }
    // The service's own pool is the same role.
    await expect(t.app.server.services.db.query(`DELETE FROM ledger_entries`)).rejects.toMatchObject({
      driverError: expect.objectContaining({ code: '42501', message: 'permission denied for table ledger_entries' }),
    });
    expect(await ledgerCounts()).toEqual(before);
  });

  it('cannot disable, drop or sidestep the immutability triggers: only an owner or a superuser may', async () => {
    const notOwner = (table: string) => ({ code: '42501', message: `must be owner of table ${table}` });
    for (const table of LEDGER) {
      expect(await refusal(`ALTER TABLE ${table} DISABLE TRIGGER ALL`)).toEqual(notOwner(table));
      expect(await refusal(`ALTER TABLE ${table} DISABLE TRIGGER ${table}_immutable`)).toEqual(notOwner(table));
      expect(await refusal(`DROP TRIGGER ${table}_no_truncate ON ${table}`)).toEqual({ code: '42501', message: `must be owner of relation ${table}` });
      expect(await refusal(`ALTER TABLE ${table} OWNER TO ${runtimeUser}`)).toEqual(notOwner(table));
    }
    // Nor can the function the triggers run be replaced or changed.
    expect(await refusal(`CREATE OR REPLACE FUNCTION refuse_ledger_change() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'`)).toEqual({
      code: '42501',
      message: 'permission denied for schema public',
    });
    expect(await refusal(`ALTER FUNCTION refuse_ledger_change() RENAME TO refuse_nothing`)).toEqual({ code: '42501', message: 'must be owner of function refuse_ledger_change' });
    // Triggers are skipped in replica mode: a superuser's setting.
    expect(await refusal(`SET session_replication_role = replica`)).toMatchObject({ code: '42501' });
    // No becoming the owner, and no new objects to own.
    const owner = (await t.app.one<{ u: string }>(`SELECT tableowner AS u FROM pg_tables WHERE tablename = 'ledger_entries'`)).u;
    expect(await refusal(`SET ROLE ${owner}`)).toMatchObject({ code: '42501' });
    expect(await refusal(`CREATE TABLE lp_mine (id int)`)).toEqual({ code: '42501', message: 'permission denied for schema public' });
    // The triggers are all still there and enabled.
    const triggers = await t.app.rows(
      `SELECT tgrelid::regclass::text AS t, tgname, tgenabled FROM pg_trigger WHERE tgname LIKE '%immutable' OR tgname LIKE '%no_truncate' ORDER BY 1, 2`,
    );
    expect(triggers).toEqual([
      { t: 'ledger_entries', tgname: 'ledger_entries_immutable', tgenabled: 'O' },
      { t: 'ledger_entries', tgname: 'ledger_entries_no_truncate', tgenabled: 'O' },
      { t: 'ledger_lot_movements', tgname: 'ledger_lot_movements_immutable', tgenabled: 'O' },
      { t: 'ledger_lot_movements', tgname: 'ledger_lot_movements_no_truncate', tgenabled: 'O' },
      { t: 'price_books', tgname: 'price_books_immutable', tgenabled: 'O' },
    ]);
  });

  it('keeps price books append-only too, and deletes only where the retention sweep does', async () => {
    expect(await refusal(`DELETE FROM price_books`)).toEqual({ code: '42501', message: 'permission denied for table price_books' });
    expect(await refusal(`TRUNCATE price_books`)).toEqual({ code: '42501', message: 'permission denied for table price_books' });
    // Not even UPDATE: publishing takes its turn with an advisory lock (and the trigger would refuse the row change anyway).
    expect(await refusal(`UPDATE price_books SET note = note`)).toEqual({ code: '42501', message: 'permission denied for table price_books' });
    expect(await refusal(`DELETE FROM accounts WHERE id = 'nobody'`)).toEqual({ code: '42501', message: 'permission denied for table accounts' });
    expect(await refusal(`INSERT INTO schema_migrations (timestamp, name) VALUES (1, 'forged')`)).toEqual({ code: '42501', message: 'permission denied for table schema_migrations' });
    await runtime.query(`DELETE FROM idempotency_keys WHERE false`);
    await runtime.query(`DELETE FROM quotes WHERE false`);
  });

  it('has exactly the ledger privileges of the grants, on every table of the schema', async () => {
    const privileges = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'];
    const has = await t.app.rows<{ t: string; p: string }>(
      `SELECT c.relname AS t, p AS p FROM pg_class c, unnest($2::text[]) p
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND has_table_privilege($1, c.oid, p) ORDER BY 1, 2`,
      [runtimeUser, privileges],
    );
    const of = (table: string) => has.filter((h) => h.t === table).map((h) => h.p);
    expect(of('ledger_entries')).toEqual(['INSERT', 'SELECT']);
    expect(of('ledger_lot_movements')).toEqual(['INSERT', 'SELECT']);
    expect(of('price_books')).toEqual(['INSERT', 'SELECT']);
    expect(of('accounts')).toEqual(['INSERT', 'SELECT', 'UPDATE']);
    expect(of('idempotency_keys')).toEqual(['DELETE', 'INSERT', 'SELECT', 'UPDATE']);
    expect(of('schema_functions')).toEqual(['SELECT']);
    expect(has.some((h) => ['TRUNCATE', 'REFERENCES', 'TRIGGER'].includes(h.p))).toBe(false);
    const tables = await t.app.rows<{ t: string }>(`SELECT relname AS t FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1`);
    expect(tables.filter((x) => !of(x.t).includes('SELECT'))).toEqual([]); // every table is covered
  });

  it('owns no table, sequence, function, type or schema of the database (the owner owns them all)', async () => {
    const OWNED = `
      SELECT 'class' AS kind, relname::text AS name FROM pg_class WHERE pg_has_role($1, relowner, 'MEMBER') AND relnamespace NOT IN (SELECT oid FROM pg_namespace WHERE nspname LIKE 'pg_%' OR nspname = 'information_schema')
      UNION ALL SELECT 'function', proname::text FROM pg_proc WHERE pg_has_role($1, proowner, 'MEMBER') AND pronamespace = 'public'::regnamespace
      UNION ALL SELECT 'type', typname::text FROM pg_type WHERE pg_has_role($1, typowner, 'MEMBER') AND typnamespace = 'public'::regnamespace
      UNION ALL SELECT 'schema', nspname::text FROM pg_namespace WHERE pg_has_role($1, nspowner, 'MEMBER') AND nspname NOT LIKE 'pg_%'
      UNION ALL SELECT 'database', datname::text FROM pg_database WHERE pg_has_role($1, datdba, 'MEMBER') AND datname = current_database()
      ORDER BY 1, 2`;
    expect(await t.app.rows(OWNED, [runtimeUser])).toEqual([]);
    expect(await t.app.rows(OWNED, ['credits_runtime'])).toEqual([]);
    // The same question of the owner is not empty: it owns the ledger and its functions.
    const owner = (await t.app.one<{ u: string }>(`SELECT tableowner AS u FROM pg_tables WHERE tablename = 'ledger_entries'`)).u;
    const owned = await t.app.rows<{ kind: string; name: string }>(OWNED, [owner]);
    expect(owned).toEqual(expect.arrayContaining([
      { kind: 'class', name: 'ledger_entries' },
      { kind: 'class', name: 'ledger_lot_movements' },
      { kind: 'function', name: 'ledger_debit' },
      { kind: 'function', name: 'refuse_ledger_change' },
    ]));
  });
});

describe('the owner migrates', () => {
  it('migrated the template (it owns every table and ran every migration), migrates again, and its grants cover a new table', async () => {
    const owner = await t.app.one<{ u: string }>(`SELECT current_user AS u`);
    const owners = await t.app.rows<{ o: string }>(`SELECT DISTINCT tableowner AS o FROM pg_tables WHERE schemaname = 'public'`);
    expect(owners).toEqual([{ o: owner.u }]);
    // A table a new migration would add: the runtime role may not read it until the grants run again.
    await t.app.audit.query(`CREATE TABLE lp_new_table (id int PRIMARY KEY)`);
    expect(await refusal(`SELECT * FROM lp_new_table`)).toEqual({ code: '42501', message: 'permission denied for table lp_new_table' });
    const ds = createDataSource(t.app.databaseUrl, 1, 'least-privilege-migrate');
    await ds.initialize();
    try {
      expect(await migrate(ds)).toEqual({ functions: [], migrations: [] }); // the owner's migrate: nothing pending, grants again
    } finally {
      await ds.destroy();
    }
    expect((await runtime.query(`SELECT count(*)::int AS n FROM lp_new_table`)).rows).toEqual([{ n: 0 }]);
    expect(await refusal(`DELETE FROM lp_new_table`)).toEqual({ code: '42501', message: 'permission denied for table lp_new_table' });
    await t.app.audit.query(`DROP TABLE lp_new_table`);
  });
});
