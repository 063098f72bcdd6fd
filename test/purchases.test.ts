import type { SandboxProvider } from '../src/modules/billing/sandbox-provider';
import { MeDocument, MyNotificationsDocument, MyPurchasesDocument, PurchaseCreditPackDocument } from './graphql/generated';
import { adjustCredits, balanceOf, openAccount, signupCredits } from './helpers/accounts';
import { useTestApp } from './helpers/test-app';

const t = useTestApp();
let signup: number; // the catalog's sign-up credits: every account starts with them

beforeAll(async () => {
  signup = await signupCredits(t.app);
});

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
    expect(out.balance).toEqual({ available: signup + 50 });
    expect(out.purchase).toMatchObject({ kind: 'CREDIT_PACK', status: 'COMPLETED', packCode: 'STARTER', tier: null, interval: null, credits: 50, amountCents: 500, currency: 'USD' });
    expect(new Date(out.purchase!.refundableUntil!).getTime() - new Date(out.purchase!.completedAt!).getTime()).toBe(24 * 3600 * 1000);
    const me = await t.app.gql(MeDocument, {}, { sub: 'buyer' });
    expect(me.data!.me.balance.lots.map((l) => [l.source, l.granted, l.expiresAt])).toEqual([
      ['SIGNUP_BONUS', signup, null],
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
    await adjustCredits(t.app, 'spender', -(signup + 5), { reason: 'use' }); // all the sign-up credits, then 5 of the pack's
    const me = await t.app.gql(MeDocument, {}, { sub: 'spender' });
    expect(me.data!.me.balance.lots.map((l) => [l.source, l.remaining])).toEqual([['PACK_PURCHASE', 195]]);
  });

  it('refuses an unknown pack with NOT_FOUND and changes nothing', async () => {
    await openAccount(t.app, 'typo');
    const res = await buy('typo', 'MEGA');
    expect(res.data!.purchaseCreditPack.userErrors).toEqual([{ code: 'NOT_FOUND', message: 'No credit pack "MEGA" is on sale; see creditPacks', field: ['input', 'packCode'] }]);
    expect(await purchases('typo')).toEqual([]);
    expect(await balanceOf(t.app, 'typo')).toBe(signup);
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
    expect(await balanceOf(t.app, 'eager')).toBe(signup + 500);
    const again = await buy('eager', 'PRO', 'buy-pro-1');
    expect(again.data!.purchaseCreditPack.purchase!.id).toBe([...ids][0]);
    const other = await buy('eager', 'STARTER', 'buy-pro-1');
    expect(other.data!.purchaseCreditPack.userErrors.map((e) => e.code)).toEqual(['IDEMPOTENCY_KEY_REUSED']);
    expect(await purchases('eager')).toEqual([{ status: 'COMPLETED', credits: 500 }]);
  });

  it('refuses bad input with BAD_USER_INPUT naming the field and its rule, without echoing the input', async () => {
    const res = await t.app.gql(PurchaseCreditPackDocument, { input: { packCode: '' } }, { sub: 'x' });
    expect(res.errors!.map((e) => [e.extensions!.code, e.message, e.extensions!.field])).toEqual([
      ['BAD_USER_INPUT', 'input.packCode must be longer than or equal to 1 character', ['input', 'packCode']],
    ]);
    expect(Object.keys(res.errors![0].extensions!).sort()).toEqual(['code', 'field', 'stacktrace']); // not the input again
    const anon = await t.app.gql(PurchaseCreditPackDocument, { input: { packCode: 'STARTER' } }, null);
    expect(anon.errors!.map((e) => [e.extensions!.code, e.message])).toEqual([['UNAUTHENTICATED', 'A valid bearer token is required']]);
  });
});
