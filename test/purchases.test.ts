import type { SandboxProvider } from '../src/modules/billing/sandbox-provider';
import { AdjustCreditsDocument, MeDocument, MyNotificationsDocument, MyPurchasesDocument, PurchaseCreditPackDocument } from './graphql/generated';
import { Role } from '../src/common/auth/role.enum';
import { useTestApp } from './helpers/test-app';

const t = useTestApp();

function buy(sub: string, packCode: string, idempotencyKey?: string) {
  return t.app.gql(PurchaseCreditPackDocument, { input: { packCode, idempotencyKey } }, { sub });
}

async function purchases(sub: string) {
  return (await t.app.audit.query('SELECT status, credits FROM purchases WHERE account_id = $1', [sub])).rows;
}

describe('purchaseCreditPack (sandbox provider)', () => {
  it('adds the pack as a lot that never expires, records the purchase and notifies', async () => {
    const res = await buy('buyer', 'STARTER');
    const out = res.data!.purchaseCreditPack;
    expect(out.userErrors).toEqual([]);
    expect(out.checkoutUrl).toBeNull();
    expect(out.balance).toEqual({ available: 75 });
    expect(out.purchase).toMatchObject({ kind: 'CREDIT_PACK', status: 'COMPLETED', packCode: 'STARTER', tier: null, interval: null, credits: 50, amountCents: 500, currency: 'USD' });
    expect(new Date(out.purchase!.refundableUntil!).getTime() - new Date(out.purchase!.completedAt!).getTime()).toBe(24 * 3600 * 1000);
    const me = await t.app.gql(MeDocument, {}, { sub: 'buyer' });
    expect(me.data!.me.balance.lots.map((l) => [l.source, l.granted, l.expiresAt])).toEqual([
      ['SIGNUP_BONUS', 25, null],
      ['PACK_PURCHASE', 50, null],
    ]);
    const grant = await t.app.audit.query(`SELECT kind, amount, purchase_id FROM ledger_entries WHERE account_id = 'buyer' ORDER BY id DESC LIMIT 1`);
    expect(grant.rows[0]).toEqual({ kind: 'GRANT', amount: 50, purchase_id: out.purchase!.id });
    const notes = await t.app.gql(MyNotificationsDocument, {}, { sub: 'buyer' });
    expect(notes.data!.me.notifications.edges.map((e) => [e.node.kind, e.node.message])).toEqual([
      ['PURCHASE_COMPLETED', 'Thank you: 50 credits from the STARTER pack are yours, and they never expire.'],
    ]);
    const listed = await t.app.gql(MyPurchasesDocument, {}, { sub: 'buyer' });
    expect(listed.data!.me.purchases.edges.map((e) => [e.node.packCode, e.node.status])).toEqual([['STARTER', 'COMPLETED']]);
  });

  it('spends never-expiring lots oldest first: the sign-up bonus before the pack', async () => {
    await buy('spender', 'CREATOR');
    await t.app.gql(AdjustCreditsDocument, { input: { accountId: 'spender', amount: -30, reason: 'use' } }, { sub: 'ops', role: Role.ADMIN });
    const me = await t.app.gql(MeDocument, {}, { sub: 'spender' });
    expect(me.data!.me.balance.lots.map((l) => [l.source, l.remaining])).toEqual([['PACK_PURCHASE', 195]]);
  });

  it('refuses an unknown pack with NOT_FOUND and changes nothing', async () => {
    await t.app.gql(MeDocument, {}, { sub: 'typo' });
    const res = await buy('typo', 'MEGA');
    expect(res.data!.purchaseCreditPack.userErrors).toEqual([{ code: 'NOT_FOUND', message: 'No credit pack "MEGA" is on sale; see creditPacks', field: ['input', 'packCode'] }]);
    expect(await purchases('typo')).toEqual([]);
    const balance = await t.app.audit.query(`SELECT available FROM accounts WHERE id = 'typo'`);
    expect(balance.rows[0].available).toBe(25);
  });

  it('charges once for twenty concurrent purchases with one idempotency key', async () => {
    const provider = t.app.server.services.payments as SandboxProvider;
    const chargesBefore = provider.charges.size;
    const results = await Promise.all(Array.from({ length: 20 }, () => buy('eager', 'PRO', 'buy-pro-1')));
    const ids = new Set(results.map((r) => r.data!.purchaseCreditPack.purchase?.id));
    expect(ids.size).toBe(1);
    expect(results.every((r) => r.data!.purchaseCreditPack.purchase!.status === 'COMPLETED')).toBe(true);
    expect(provider.charges.size - chargesBefore).toBe(1);
    expect(await purchases('eager')).toEqual([{ status: 'COMPLETED', credits: 500 }]);
    const balance = await t.app.audit.query(`SELECT available FROM accounts WHERE id = 'eager'`);
    expect(balance.rows[0].available).toBe(525);
    const again = await buy('eager', 'PRO', 'buy-pro-1');
    expect(again.data!.purchaseCreditPack.purchase!.id).toBe([...ids][0]);
    const other = await buy('eager', 'STARTER', 'buy-pro-1');
    expect(other.data!.purchaseCreditPack.userErrors.map((e) => e.code)).toEqual(['IDEMPOTENCY_KEY_REUSED']);
    expect(await purchases('eager')).toHaveLength(1);
  });

  it('refuses bad input with BAD_USER_INPUT', async () => {
    const res = await t.app.gql(PurchaseCreditPackDocument, { input: { packCode: '' } }, { sub: 'x' });
    expect(res.errors![0].extensions!.code).toBe('BAD_USER_INPUT');
    const anon = await t.app.gql(PurchaseCreditPackDocument, { input: { packCode: 'STARTER' } }, null);
    expect(anon.errors![0].extensions!.code).toBe('UNAUTHENTICATED');
  });
});
