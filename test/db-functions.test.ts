/**
 * The SQL functions are source files (db/functions, one per function); the migrated database
 * holds exactly them, so a file can never drift from what runs. And a database migrated by the
 * first round's code — test/fixtures/round-one.sql, a dump of one with accounts, lots, a pack and
 * a plan in it — upgrades to exactly the schema of a fresh database, keeping its data.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { createDataSource } from '../ormconfig';
import { definitionOf, functionFiles, functionsDir } from '../src/common/db/functions';
import { START_COMMAND_COLUMNS } from '../src/modules/generations/start-command';
import { migrate } from '../src/common/db/migrate';
import { render } from '../src/modules/notifications/notices';
import { createTestDatabase } from './helpers/test-app';

const OURS = `SELECT p.proname AS name, pg_get_functiondef(p.oid) AS def FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE n.nspname = 'public' AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e') ORDER BY 1`;

/** Everything that makes a schema: columns, constraints, indexes, triggers. */
const SCHEMA = [
  `SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2`,
  `SELECT conrelid::regclass::text AS t, conname, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2`,
  `SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2`,
  `SELECT event_object_table, trigger_name, action_timing, event_manipulation, action_statement FROM information_schema.triggers ORDER BY 1, 2, 4`,
];

async function withClient<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const schemaOf = (url: string) => withClient(url, async (c) => Promise.all(SCHEMA.map(async (q) => (await c.query(q)).rows)));
const functionsOf = (url: string) => withClient(url, async (c) => (await c.query(OURS)).rows as { name: string; def: string }[]);

describe('SQL functions as files', () => {
  it('keeps every SQL function in a file of its own, exactly as the migrated database defines it, and none in a migration', async () => {
    const files = functionFiles();
    const db = await functionsOf(await createTestDatabase());
    expect(db.map((f) => f.name)).toEqual(files.map((f) => f.name));
    for (const f of files) {
      expect({ file: f.name, def: definitionOf(f.sql) }).toEqual({ file: f.name, def: db.find((d) => d.name === f.name)!.def.trim() });
      expect(definitionOf(f.sql).startsWith(`CREATE OR REPLACE FUNCTION public.${f.name}(`)).toBe(true);
      expect(f.sql.match(/CREATE OR REPLACE FUNCTION/g)).toHaveLength(1);
    }
    const migrations = path.resolve(__dirname, '..', 'migrations');
    for (const m of readdirSync(migrations)) {
      expect({ migration: m, defines: /(CREATE|DROP)( OR REPLACE)? FUNCTION/.test(readFileSync(path.join(migrations, m), 'utf8')) }).toEqual({ migration: m, defines: false });
    }
  });

  it('keeps every composite type in a file of its own, as the database has it, and the start command field for field', async () => {
    const url = await createTestDatabase();
    const types = functionFiles(functionsDir('types'));
    expect(types.map((t) => t.name)).toEqual(['start_command']);
    const attributes = await withClient(url, async (c) =>
      (await c.query(`SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
                       WHERE a.attrelid = 'public.start_command'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`)).rows as { name: string; type: string }[]);
    const rendered = `CREATE TYPE public.start_command AS (\n${attributes.map((a) => `  ${a.name} ${a.type}`).join(',\n')}\n);`;
    expect(definitionOf(types[0].sql)).toBe(rendered);
    expect(attributes).toEqual(Object.entries(START_COMMAND_COLUMNS).map(([name, type]) => ({ name, type })));
  });

  it('replaces a function whose signature changed instead of keeping the old one beside it', async () => {
    const url = await createTestDatabase();
    await withClient(url, (c) => c.query(`CREATE FUNCTION public.job_event(p_account text) RETURNS void LANGUAGE sql AS 'SELECT 1'`));
    await withClient(url, (c) => c.query(`DELETE FROM schema_functions WHERE name = 'job_event'`));
    const ds = createDataSource(url, 2);
    await ds.initialize();
    try {
      expect((await migrate(ds)).functions).toEqual(['job_event']);
    } finally {
      await ds.destroy();
    }
    const defs = (await functionsOf(url)).filter((f) => f.name === 'job_event');
    expect(defs.map((d) => d.def.trim())).toEqual([definitionOf(functionFiles().find((f) => f.name === 'job_event')!.sql)]);
  });

  it('upgrades a database migrated by the first round, data and all, to exactly the schema of a fresh one', async () => {
    const fresh = await createTestDatabase();
    const old = new URL(fresh);
    old.pathname = `/${old.pathname.slice(1)}_r1`;
    await withClient(process.env.TEST_PG_ADMIN_URL!, (c) => c.query(`CREATE DATABASE ${old.pathname.slice(1)}`));
    // The dump sets search_path to '' for its session: a client of its own.
    await withClient(old.toString(), (c) => c.query(readFileSync(path.resolve(__dirname, 'fixtures', 'round-one.sql'), 'utf8')));

    const ds = createDataSource(old.toString(), 2);
    await ds.initialize();
    try {
      const first = await migrate(ds);
      // None was applied from a file before: the types first, then every function.
      expect(first.functions).toEqual(['type:start_command', ...functionFiles().map((f) => f.name)]);
      expect(first.migrations[0]).toBe('TestClockStart1764000005000'); // the first migration after round one
      expect(await migrate(ds)).toEqual({ functions: [], migrations: [] }); // again: nothing to do
    } finally {
      await ds.destroy();
    }

    expect(await schemaOf(old.toString())).toEqual(await schemaOf(fresh));
    expect(await functionsOf(old.toString())).toEqual(await functionsOf(fresh));
    await withClient(old.toString(), async (c) => {
      // A notification kept as a sentence keeps it: the `text` template renders it as it was.
      const [note] = (await c.query(`SELECT kind, template, params FROM notifications`)).rows;
      expect({ kind: note.kind, message: render(note.template, note.params) }).toEqual({
        kind: 'PURCHASE_COMPLETED', message: 'Thank you: 50 credits from the STARTER pack are yours, and they never expire.',
      });
      expect((await c.query(`SELECT id, tier, available, subscription_ref FROM accounts ORDER BY id`)).rows).toEqual([
        { id: 'r1-plan', tier: 'CREATOR', available: 0, subscription_ref: 'sandbox_sub_r1-plan' },
        { id: 'r1-user', tier: 'FREE', available: 72, subscription_ref: null },
      ]);
      expect((await c.query(`SELECT kind, amount, balance_after FROM ledger_entries WHERE account_id = 'r1-user' ORDER BY id`)).rows).toEqual([
        { kind: 'GRANT', amount: 25, balance_after: 25 }, { kind: 'GRANT', amount: 50, balance_after: 75 }, { kind: 'ADJUSTMENT', amount: -3, balance_after: 72 },
      ]);
      expect((await c.query(`SELECT status, pack_code FROM purchases`)).rows).toEqual([{ status: 'COMPLETED', pack_code: 'STARTER' }]);
      // The round-one sandbox plan renews through its new sandbox subscription, at its price.
      expect((await c.query(`SELECT id, amount_cents, status FROM sandbox_subscriptions`)).rows).toEqual([{ id: 'sandbox_sub_r1-plan', amount_cents: 1200, status: 'ACTIVE' }]);
      // And the functions from the files work on the old data: a debit takes from the oldest lot first.
      const [debit] = (await c.query(`SELECT ok, balance FROM ledger_debit('r1-user', 30, 'ADJUSTMENT', 'after the upgrade', NULL, NULL, NULL, 'ops', '2026-11-21T10:00:00Z')`)).rows;
      expect(debit).toEqual({ ok: true, balance: 42 });
    });
  });
});
