/**
 * Immutability, enforced by the database: the application's own connection (the server's
 * TypeORM DataSource and its pg pool, as the runtime role) cannot UPDATE, DELETE or TRUNCATE
 * ledger entries or lot movements — not with raw SQL, not through the ORM, not inside the app's
 * own transaction helper — refused for want of the privilege, naming the table; the owner, who
 * has the privileges, is refused by the triggers, naming the statement and the table. An
 * auditor watches every row's hash through all of it. A last test shows that the auditor's
 * immutability watch does catch a change when the triggers are taken away (as the tables'
 * owner can, and the service's role cannot: test/reliability/least-privilege.test.ts).
 */
import { Role } from '../../src/common/auth/role.enum';
import { transaction } from '../../src/common/db/transaction';
import { startAuditor } from '../helpers/auditor';
import { startTestApp, useTestApp, type TestApp } from '../helpers/test-app';

const t = useTestApp();
const admin = { sub: 'immutability-ops', role: Role.ADMIN };

const START = `mutation ($input: StartGenerationInput!) { startGeneration(input: $input) { job { id credits } userErrors { code } } }`;
const BUY = `mutation ($input: PurchaseCreditPackInput!) { purchaseCreditPack(input: $input) { purchase { id } userErrors { code } } }`;
const ADJUST = `mutation ($input: AdjustCreditsInput!) { adjustCredits(input: $input) { entry { id } userErrors { code } } }`;

/**
 * Gives `sub` a ledger with every kind of row: the sign-up grant, a pack grant (50), three
 * 9-credit debits (the third spans the sign-up lot and the pack's), an adjustment (+7).
 */
async function someLedger(app: TestApp, sub: string): Promise<void> {
  const buy = await app.raw<{ purchaseCreditPack: { userErrors: unknown[] } }>(BUY, { input: { packCode: 'STARTER' } }, { sub });
  expect(buy.data!.purchaseCreditPack.userErrors).toEqual([]);
  for (let i = 0; i < 3; i++) {
    const start = await app.raw<{ startGeneration: { job: { credits: number } | null } }>(
      START,
      { input: { settings: { type: 'VIDEO', durationSeconds: 5 }, prompt: `take ${i}` } },
      { sub },
    );
    expect(start.data!.startGeneration.job!.credits).toBe(9);
  }
  const adj = await app.raw<{ adjustCredits: { userErrors: unknown[] } }>(ADJUST, { input: { accountId: sub, amount: 7, reason: 'goodwill' } }, admin);
  expect(adj.data!.adjustCredits.userErrors).toEqual([]);
}

async function ledgerFingerprint(app: TestApp): Promise<{ entries: string; movements: string; n: number; m: number }> {
  const { rows } = await app.audit.query(`
    SELECT (SELECT md5(string_agg(md5(e::text), '' ORDER BY id)) FROM ledger_entries e) AS entries,
           (SELECT md5(string_agg(md5(m::text), '' ORDER BY entry_id, lot_id)) FROM ledger_lot_movements m) AS movements,
           (SELECT count(*)::int FROM ledger_entries) AS n, (SELECT count(*)::int FROM ledger_lot_movements) AS m`);
  return rows[0];
}

/** The runtime role has no UPDATE, DELETE or TRUNCATE on the ledger: refused before any trigger. */
const refused = (_op: string, table: string) => ({
  message: `permission denied for table ${table}`,
  driverError: expect.objectContaining({ code: '42501' }), // insufficient_privilege
});

describe('the ledger is append-only for the application itself', () => {
  let before: Awaited<ReturnType<typeof ledgerFingerprint>>;
  let auditor: ReturnType<typeof startAuditor>;

  beforeAll(async () => {
    await someLedger(t.app, 'imm-a');
    await someLedger(t.app, 'imm-b');
    before = await ledgerFingerprint(t.app);
    // Per account: 6 entries (sign-up, pack, three debits, adjustment), 7 movements (the third debit spans two lots).
    expect([before.n, before.m]).toEqual([12, 14]);
    auditor = startAuditor(t.app.audit, 50);
  });

  afterAll(async () => {
    expect(await auditor.stop()).toEqual([]);
    expect(auditor.passes()).toBeGreaterThan(1);
    expect(await ledgerFingerprint(t.app)).toEqual(before);
  });

  it('refuses UPDATE of ledger entries on the app connection, naming the statement and table', async () => {
    const { db } = t.app.server.services;
    await expect(db.query(`UPDATE ledger_entries SET amount = amount * 100 WHERE account_id = 'imm-a'`)).rejects.toMatchObject(refused('UPDATE', 'ledger_entries'));
    await expect(db.query(`UPDATE ledger_entries SET description = 'edited' WHERE id = (SELECT min(id) FROM ledger_entries)`)).rejects.toMatchObject(
      refused('UPDATE', 'ledger_entries'),
    );
    expect(await ledgerFingerprint(t.app)).toEqual(before);
  });

  it('refuses DELETE of ledger entries, and of lot movements, on the app connection', async () => {
    const { db } = t.app.server.services;
    await expect(db.query(`DELETE FROM ledger_entries WHERE account_id = 'imm-b'`)).rejects.toMatchObject(refused('DELETE', 'ledger_entries'));
    await expect(db.query(`DELETE FROM ledger_lot_movements`)).rejects.toMatchObject(refused('DELETE', 'ledger_lot_movements'));
    expect(await ledgerFingerprint(t.app)).toEqual(before);
  });

  it('refuses UPDATE of lot movements (moving a debit onto another lot)', async () => {
    const { db } = t.app.server.services;
    await expect(db.query(`UPDATE ledger_lot_movements SET amount = -1 WHERE amount < -1`)).rejects.toMatchObject(refused('UPDATE', 'ledger_lot_movements'));
    expect(await ledgerFingerprint(t.app)).toEqual(before);
  });

  it('refuses TRUNCATE of either table, even with CASCADE', async () => {
    const { db } = t.app.server.services;
    await expect(db.query(`TRUNCATE ledger_lot_movements`)).rejects.toMatchObject(refused('TRUNCATE', 'ledger_lot_movements'));
    // The privilege is checked before the foreign key of the movements, with CASCADE or without.
    await expect(db.query(`TRUNCATE ledger_entries`)).rejects.toMatchObject(refused('TRUNCATE', 'ledger_entries'));
    await expect(db.query(`TRUNCATE ledger_entries CASCADE`)).rejects.toMatchObject(refused('TRUNCATE', 'ledger_entries'));
    expect(await ledgerFingerprint(t.app)).toEqual(before);
  });

  it('refuses changes made through the ORM (query builder update and delete)', async () => {
    // The service maps no entity to ledger_entries (it reads them with SQL); any TypeORM write
    // path still ends in UPDATE or DELETE, which the triggers refuse.
    const { db } = t.app.server.services;
    const [entry] = (await db.query(`SELECT id, amount FROM ledger_entries WHERE account_id = 'imm-a' AND kind = 'DEBIT'`)) as { id: string; amount: number }[];
    expect(entry.amount).toBe(-9);
    await expect(db.createQueryBuilder().update('ledger_entries').set({ amount: -1 }).where('id = :id', { id: entry.id }).execute())
      .rejects.toMatchObject(refused('UPDATE', 'ledger_entries'));
    await expect(db.createQueryBuilder().delete().from('ledger_entries').where('id = :id', { id: entry.id }).execute())
      .rejects.toMatchObject(refused('DELETE', 'ledger_entries'));
    await expect(db.createQueryBuilder().update('ledger_entries').set({ balance_after: 1_000_000 }).where('account_id = :a', { a: 'imm-a' }).execute())
      .rejects.toMatchObject(refused('UPDATE', 'ledger_entries'));
    expect(await ledgerFingerprint(t.app)).toEqual(before);
  });

  it("rolls back the app's whole transaction when a step inside it tries to rewrite history", async () => {
    const { db } = t.app.server.services;
    const balanceBefore = (await t.app.audit.query(`SELECT available FROM accounts WHERE id = 'imm-b'`)).rows[0].available;
    await expect(
      transaction(db, async (tx) => {
        // A legitimate change first, then the forbidden one: neither may survive.
        await tx.query(`UPDATE accounts SET low_credit_threshold = 77 WHERE id = 'imm-b'`);
        await tx.query(`DELETE FROM ledger_entries WHERE account_id = 'imm-b' AND kind = 'DEBIT'`);
      }),
    ).rejects.toMatchObject(refused('DELETE', 'ledger_entries'));
    const after = (await t.app.audit.query(`SELECT available, low_credit_threshold FROM accounts WHERE id = 'imm-b'`)).rows[0];
    expect(after).toEqual({ available: balanceBefore, low_credit_threshold: 5 });
    expect(await ledgerFingerprint(t.app)).toEqual(before);
  });

  it('refuses the owner too, with the triggers, naming the statement and the table', async () => {
    const { audit } = t.app; // the owner: it has every privilege, the triggers still refuse
    const trigger = (op: string, table: string) => ({ message: `ledger rows are immutable: ${op} on ${table} refused`, code: '42501' });
    await expect(audit.query(`UPDATE ledger_entries SET amount = amount * 100 WHERE account_id = 'imm-a'`)).rejects.toMatchObject(trigger('UPDATE', 'ledger_entries'));
    await expect(audit.query(`DELETE FROM ledger_lot_movements`)).rejects.toMatchObject(trigger('DELETE', 'ledger_lot_movements'));
    await expect(audit.query(`TRUNCATE ledger_lot_movements`)).rejects.toMatchObject(trigger('TRUNCATE', 'ledger_lot_movements'));
    // Without CASCADE the foreign key of the movements refuses first; with it, the trigger of the named table.
    await expect(audit.query(`TRUNCATE ledger_entries`)).rejects.toMatchObject({ message: 'cannot truncate a table referenced in a foreign key constraint', code: '0A000' });
    await expect(audit.query(`TRUNCATE ledger_entries CASCADE`)).rejects.toMatchObject(trigger('TRUNCATE', 'ledger_entries'));
    expect(await ledgerFingerprint(t.app)).toEqual(before);
  });

  it('still appends: new changes are new rows, and the earlier rows read exactly as before', async () => {
    const res = await t.app.raw<{ adjustCredits: { userErrors: unknown[] } }>(ADJUST, { input: { accountId: 'imm-a', amount: -3, reason: 'correction' } }, admin);
    expect(res.data!.adjustCredits.userErrors).toEqual([]);
    const { rows } = await t.app.audit.query(`
      SELECT md5(string_agg(md5(e::text), '' ORDER BY id)) AS entries, count(*)::int AS n
        FROM ledger_entries e WHERE id <= (SELECT max(id) FROM ledger_entries) - 1`);
    expect(rows[0]).toEqual({ entries: before.entries, n: before.n });
    before = await ledgerFingerprint(t.app);
    expect(before.n).toBe(13);
  });
});

describe('the auditor sees through a bypass', () => {
  it('reports an entry changed and a movement removed behind the triggers (as the tables’ owner can)', async () => {
    const other = await startTestApp();
    try {
      await someLedger(other, 'bypassed');
      const auditor = startAuditor(other.audit, 50);
      // It can only notice a change to a row it has seen: let it take the ledger in first.
      while (auditor.passes() < 1) await new Promise((r) => setTimeout(r, 20));
      const { rows } = await other.audit.query(`SELECT max(id)::text AS id FROM ledger_entries WHERE account_id = 'bypassed' AND kind = 'DEBIT'`);
      const debit = rows[0].id as string;
      const { rows: mv } = await other.audit.query(`SELECT lot_id FROM ledger_lot_movements WHERE entry_id = $1 ORDER BY lot_id LIMIT 1`, [debit]);
      // The owner (it ran the migrations) may switch the triggers off; the app's role may not.
      await expect(other.server.services.db.query(`ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_immutable`)).rejects.toMatchObject({
        message: 'must be owner of table ledger_entries',
        driverError: expect.objectContaining({ code: '42501' }),
      });
      const owner = await other.audit.connect();
      try {
        await owner.query('BEGIN');
        await owner.query(`ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_immutable`);
        await owner.query(`ALTER TABLE ledger_lot_movements DISABLE TRIGGER ledger_lot_movements_immutable`);
        await owner.query(`UPDATE ledger_entries SET description = 'nothing to see' WHERE id = $1`, [debit]);
        await owner.query(`DELETE FROM ledger_lot_movements WHERE entry_id = $1 AND lot_id = $2`, [debit, mv[0].lot_id]);
        await owner.query(`ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_immutable`);
        await owner.query(`ALTER TABLE ledger_lot_movements ENABLE TRIGGER ledger_lot_movements_immutable`);
        await owner.query('COMMIT');
      } finally {
        owner.release();
      }
      const seen = await auditor.stop();
      expect(seen).toEqual(
        expect.arrayContaining([
          `immutability: ledger entry ${debit} changed after it was written`,
          `immutability: lot movement (entry/lot) ${debit}/${mv[0].lot_id} disappeared`,
        ]),
      );
      // The lost movement also breaks the arithmetic the invariants check: the entry's and the lot's.
      const arithmetic = seen.filter((v) => !v.startsWith('immutability:'));
      expect(arithmetic).toHaveLength(2);
      expect(arithmetic).toEqual(
        expect.arrayContaining([
          expect.stringMatching(new RegExp(`^entry movements: entry ${debit}: lot movements -[27] != amount -9$`)),
          expect.stringMatching(new RegExp(`^lot movements: lot ${mv[0].lot_id}: movements \\d+ != remaining \\d+$`)),
        ]),
      );
    } finally {
      await other.stop();
    }
  });
});
