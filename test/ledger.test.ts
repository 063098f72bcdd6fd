import { transaction } from '../src/common/db/transaction';
import { LedgerEntryKind, LotSource } from '../src/modules/ledger/ledger.enums';
import { AdjustCreditsDocument, MeDocument, MyLedgerDocument, SetLowCreditThresholdDocument } from './graphql/generated';
import { ADMIN, adjustCredits, balanceOf, openAccount, signupCredits } from './helpers/accounts';
import { useTestApp } from './helpers/test-app';

const t = useTestApp();
let signup: number; // the catalog's sign-up credits: every account starts with them

beforeAll(async () => {
  signup = await signupCredits(t.app);
});

const adjust = (accountId: string, amount: number, idempotencyKey?: string) => adjustCredits(t.app, accountId, amount, { idempotencyKey });

async function ledgerCount(sub: string): Promise<number> {
  const r = await t.app.audit.query('SELECT count(*)::int AS n FROM ledger_entries WHERE account_id = $1', [sub]);
  return r.rows[0].n;
}

describe('the ledger', () => {
  it('adds a positive adjustment as an ADJUSTMENT lot and entry', async () => {
    await openAccount(t.app, 'adj-plus');
    const res = await adjust('adj-plus', 40);
    expect(res.data!.adjustCredits.userErrors).toEqual([]);
    expect(res.data!.adjustCredits.entry).toMatchObject({ kind: 'ADJUSTMENT', amount: 40, balanceAfter: signup + 40, description: 'test adjustment' });
    expect(res.data!.adjustCredits.balance).toEqual({ available: signup + 40 });
    const me = await t.app.gql(MeDocument, {}, { sub: 'adj-plus' });
    expect(me.data!.me.balance.lots.map((l) => [l.source, l.granted, l.remaining])).toEqual([
      ['SIGNUP_BONUS', signup, signup],
      ['ADJUSTMENT', 40, 40],
    ]);
    const actor = await t.app.audit.query(`SELECT actor FROM ledger_entries WHERE account_id = 'adj-plus' AND kind = 'ADJUSTMENT'`);
    expect(actor.rows).toEqual([{ actor: 'ops' }]);
  });

  it('spends the lot that expires first, then never-expiring lots oldest first', async () => {
    await openAccount(t.app, 'spender');
    const now = t.app.server.services.clock.now().getTime();
    const day = 24 * 3600 * 1000;
    const { ledger } = t.app.server.services;
    await transaction(t.app.server.services.db, async (tx) => {
      for (const [amount, expiresAt] of [[10, new Date(now + 20 * day)], [7, new Date(now + 5 * day)], [30, null]] as const) {
        await ledger.grant(tx, { accountId: 'spender', amount, source: LotSource.ADJUSTMENT, kind: LedgerEntryKind.ADJUSTMENT, description: 'lot', expiresAt });
      }
    });
    // Lots now: 7 (5 days), 10 (20 days), the sign-up credits (never, oldest), 30 (never, newest).
    expect(await balanceOf(t.app, 'spender')).toBe(signup + 47);
    const take = await adjust('spender', -15);
    expect(take.data!.adjustCredits.entry).toMatchObject({ amount: -15, balanceAfter: signup + 32 });
    let lots = (await t.app.gql(MeDocument, {}, { sub: 'spender' })).data!.me.balance.lots;
    expect(lots.map((l) => [l.source, l.granted, l.remaining])).toEqual([
      ['ADJUSTMENT', 10, 2],
      ['SIGNUP_BONUS', signup, signup],
      ['ADJUSTMENT', 30, 30],
    ]);
    // 30 more: the 2 left of the 10, all the sign-up credits (fewer than 28 in the catalog), the rest from the newest lot.
    await adjust('spender', -30);
    lots = (await t.app.gql(MeDocument, {}, { sub: 'spender' })).data!.me.balance.lots;
    expect(lots.map((l) => [l.source, l.granted, l.remaining])).toEqual([['ADJUSTMENT', 30, signup + 2]]);
    const moves = await t.app.audit.query(
      `SELECT l.granted, m.amount FROM ledger_lot_movements m JOIN credit_lots l ON l.id = m.lot_id
       JOIN ledger_entries e ON e.id = m.entry_id WHERE e.account_id = 'spender' AND e.amount = -30 ORDER BY l.granted`,
    );
    expect(moves.rows).toEqual([{ granted: 10, amount: -2 }, { granted: signup, amount: -signup }, { granted: 30, amount: -(28 - signup) }]);
  });

  it('refuses a negative adjustment below zero with INSUFFICIENT_CREDITS and changes nothing', async () => {
    await openAccount(t.app, 'poor');
    const before = await ledgerCount('poor');
    const res = await adjust('poor', -(signup + 1));
    expect(res.data!.adjustCredits.entry).toBeNull();
    expect(res.data!.adjustCredits.userErrors).toEqual([
      { code: 'INSUFFICIENT_CREDITS', message: `Cannot take ${signup + 1} credits: the balance is ${signup}`, field: ['input', 'amount'] },
    ]);
    expect(await balanceOf(t.app, 'poor')).toBe(signup);
    expect(await ledgerCount('poor')).toBe(before);
    const exact = await adjust('poor', -signup);
    expect(exact.data!.adjustCredits.entry).toMatchObject({ amount: -signup, balanceAfter: 0 });
  });

  it('answers NOT_FOUND for an unknown account and writes nothing', async () => {
    const res = await adjust('ghost', 10);
    expect(res.data!.adjustCredits.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
    const rows = await t.app.audit.query(`SELECT count(*)::int AS n FROM accounts WHERE id = 'ghost'`);
    expect(rows.rows[0].n).toBe(0);
  });

  it('replays an adjustment with the same key and input without changing anything', async () => {
    await openAccount(t.app, 'replay');
    const first = await adjust('replay', -5, 'key-1');
    const second = await adjust('replay', -5, 'key-1');
    expect(second.data).toEqual(first.data);
    expect(first.data!.adjustCredits.entry!.balanceAfter).toBe(signup - 5);
    expect(await balanceOf(t.app, 'replay')).toBe(signup - 5);
    expect(await ledgerCount('replay')).toBe(2);
  });

  it('refuses the same key with other input with IDEMPOTENCY_KEY_REUSED', async () => {
    await openAccount(t.app, 'reuse');
    await adjust('reuse', -5, 'key-2');
    const other = await adjust('reuse', -6, 'key-2');
    expect(other.data!.adjustCredits.entry).toBeNull();
    expect(other.data!.adjustCredits.userErrors.map((e) => e.code)).toEqual(['IDEMPOTENCY_KEY_REUSED']);
    expect(await balanceOf(t.app, 'reuse')).toBe(signup - 5);
  });

  it('applies ten concurrent submissions of one key exactly once', async () => {
    await openAccount(t.app, 'tenfold');
    const results = await Promise.all(Array.from({ length: 10 }, () => adjust('tenfold', -3, 'same-key')));
    const ids = new Set(results.map((r) => r.data!.adjustCredits.entry!.id));
    expect(ids.size).toBe(1);
    expect(await balanceOf(t.app, 'tenfold')).toBe(signup - 3);
    expect(await ledgerCount('tenfold')).toBe(2);
  });

  it('replays a refusal after a top-up as the same refusal', async () => {
    await openAccount(t.app, 'refused');
    const first = await adjust('refused', -(signup + 5), 'refusal-key');
    expect(first.data!.adjustCredits.userErrors.map((e) => e.code)).toEqual(['INSUFFICIENT_CREDITS']);
    await adjust('refused', 100);
    const replay = await adjust('refused', -(signup + 5), 'refusal-key');
    expect(replay.data).toEqual(first.data);
    expect(await balanceOf(t.app, 'refused')).toBe(signup + 100);
  });

  it('accepts exactly as many of 100 racing negative adjustments as the balance covers', async () => {
    await openAccount(t.app, 'race');
    await adjust('race', 12); // the sign-up credits and 12: that many of 100 racing -1 adjustments can succeed
    const covered = signup + 12;
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => adjust('race', -1, `race-${i}`)));
    const accepted = results.filter((r) => r.data!.adjustCredits.entry !== null).length;
    const refused = results.filter((r) => r.data!.adjustCredits.userErrors[0]?.code === 'INSUFFICIENT_CREDITS').length;
    expect(accepted).toBe(covered);
    expect(refused).toBe(100 - covered);
    expect(await balanceOf(t.app, 'race')).toBe(0);
    const debits = await t.app.audit.query(`SELECT count(*)::int AS n FROM ledger_entries WHERE account_id = 'race' AND amount < 0`);
    expect(debits.rows[0].n).toBe(covered);
  });

  it('never goes below zero when racing adjustments of different sizes', async () => {
    await openAccount(t.app, 'mixed');
    const sizes = Array.from({ length: 100 }, (_, i) => (i % 7) + 1);
    const results = await Promise.all(sizes.map((s) => adjust('mixed', -s)));
    const taken = results.reduce((sum, r, i) => sum + (r.data!.adjustCredits.entry ? sizes[i] : 0), 0);
    expect(await balanceOf(t.app, 'mixed')).toBe(signup - taken);
    expect(signup - taken).toBeGreaterThanOrEqual(0);
    // The balance only falls, so each refusal saw at least the final balance: it did not fit then either.
    const refusedSizes = sizes.filter((_, i) => results[i].data!.adjustCredits.userErrors[0]?.code === 'INSUFFICIENT_CREDITS');
    expect(refusedSizes.length + results.filter((r) => r.data!.adjustCredits.entry).length).toBe(100);
    expect(signup - taken).toBeLessThan(Math.min(...refusedSizes));
  });

  it('pages the ledger newest first with opaque cursors', async () => {
    await openAccount(t.app, 'pager');
    for (let i = 1; i <= 5; i++) await adjust('pager', i);
    const p1 = await t.app.gql(MyLedgerDocument, { first: 2 }, { sub: 'pager' });
    const c1 = p1.data!.me.ledger;
    expect(c1.totalCount).toBe(6);
    expect(c1.edges.map((e) => e.node.amount)).toEqual([5, 4]);
    expect(c1.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    const p2 = await t.app.gql(MyLedgerDocument, { first: 3, after: c1.pageInfo.endCursor }, { sub: 'pager' });
    expect(p2.data!.me.ledger.edges.map((e) => e.node.amount)).toEqual([3, 2, 1]);
    const p3 = await t.app.gql(MyLedgerDocument, { first: 3, after: p2.data!.me.ledger.pageInfo.endCursor }, { sub: 'pager' });
    expect(p3.data!.me.ledger.edges.map((e) => [e.node.kind, e.node.amount, e.node.balanceAfter])).toEqual([['GRANT', signup, signup]]);
    expect(p3.data!.me.ledger.pageInfo.hasNextPage).toBe(false);
  });

  it('refuses a page larger than 100 and a forged cursor with BAD_USER_INPUT', async () => {
    const big = await t.app.gql(MyLedgerDocument, { first: 101 }, { sub: 'pager' });
    expect(big.errors![0].extensions!.code).toBe('BAD_USER_INPUT');
    const forged = await t.app.gql(MyLedgerDocument, { first: 5, after: 'bm90LWEtY3Vyc29y' }, { sub: 'pager' });
    expect(forged.errors![0].extensions!.code).toBe('BAD_USER_INPUT');
    expect(forged.errors![0].message).toBe('The cursor is not one this API issued');
  });

  it('refuses invalid adjustment input with BAD_USER_INPUT and writes nothing', async () => {
    await openAccount(t.app, 'invalid');
    const before = await ledgerCount('invalid');
    for (const input of [
      { accountId: 'invalid', amount: 0, reason: 'zero' },
      { accountId: 'invalid', amount: 5, reason: '' },
      { accountId: 'invalid', amount: 5, reason: 'x', idempotencyKey: 'k'.repeat(256) },
      { accountId: 'invalid', amount: 1_000_000_001, reason: 'huge' },
    ]) {
      const res = await t.app.gql(AdjustCreditsDocument, { input }, ADMIN);
      expect(res.errors![0].extensions!.code).toBe('BAD_USER_INPUT');
      expect(res.data).toBeNull();
    }
    expect(await ledgerCount('invalid')).toBe(before);
  });

  it('refuses a grant that would overflow the balance with INVALID_INPUT', async () => {
    await openAccount(t.app, 'rich');
    await adjust('rich', 1_000_000_000);
    await adjust('rich', 1_000_000_000);
    const res = await adjust('rich', 1_000_000_000);
    expect(res.data!.adjustCredits.userErrors.map((e) => e.code)).toEqual(['INVALID_INPUT']);
    expect(await balanceOf(t.app, 'rich')).toBe(2_000_000_000 + signup);
  });

  it('sets the low-credit threshold within 0..1,000,000 and refuses others', async () => {
    await openAccount(t.app, 'thresh');
    const ok = await t.app.gql(SetLowCreditThresholdDocument, { threshold: signup + 5 }, { sub: 'thresh' });
    expect(ok.data!.setLowCreditThreshold).toEqual({ available: signup, lowCreditThreshold: signup + 5, isLow: true });
    for (const threshold of [-1, 1_000_001]) {
      const bad = await t.app.gql(SetLowCreditThresholdDocument, { threshold }, { sub: 'thresh' });
      expect(bad.errors![0].extensions!.code).toBe('BAD_USER_INPUT');
    }
    const row = await t.app.audit.query(`SELECT low_credit_threshold FROM accounts WHERE id = 'thresh'`);
    expect(row.rows[0].low_credit_threshold).toBe(signup + 5);
  });

  it('is immutable: the database refuses UPDATE, DELETE and TRUNCATE of ledger entries', async () => {
    await openAccount(t.app, 'immutable');
    const app = t.app.server.services.db; // the runtime role: no such privilege
    await expect(app.query(`UPDATE ledger_entries SET amount = 1000 WHERE account_id = 'immutable'`)).rejects.toThrow(/permission denied for table ledger_entries/);
    await expect(app.query(`DELETE FROM ledger_entries WHERE account_id = 'immutable'`)).rejects.toThrow(/permission denied for table ledger_entries/);
    await expect(app.query(`TRUNCATE ledger_entries CASCADE`)).rejects.toThrow(/permission denied for table ledger_entries/);
    await expect(app.query(`UPDATE ledger_lot_movements SET amount = 1`)).rejects.toThrow(/permission denied for table ledger_lot_movements/);
    // The owner has the privileges; the triggers refuse it.
    await expect(t.app.audit.query(`UPDATE ledger_entries SET amount = 1000 WHERE account_id = 'immutable'`)).rejects.toThrow(/immutable/);
    await expect(t.app.audit.query(`TRUNCATE ledger_entries CASCADE`)).rejects.toThrow(/immutable/);
    await expect(app.query(`UPDATE accounts SET available = -1 WHERE id = 'immutable'`)).rejects.toThrow(/accounts_available_never_negative/);
    expect(await balanceOf(t.app, 'immutable')).toBe(signup);
  });
});
