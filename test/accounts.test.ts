import { Role } from '../src/common/auth/role.enum';
import { AccountByIdDocument, CatalogDocument, MeDocument, MyLedgerDocument } from './graphql/generated';
import { ADMIN, openAccount, signupCredits } from './helpers/accounts';
import { useTestApp } from './helpers/test-app';

const t = useTestApp();
let signup: number; // the catalog's sign-up credits, asserted once below (the catalog test)

beforeAll(async () => {
  signup = await signupCredits(t.app);
});

describe('accounts', () => {
  it('opens a FREE account with 25 sign-up credits as one SIGNUP_BONUS lot on the first request', async () => {
    const res = await t.app.gql(MeDocument, {}, { sub: 'alice' });
    expect(res.errors).toBeUndefined();
    const me = res.data!.me;
    expect(me.id).toBe('alice');
    expect(me.plan.tier.code).toBe('FREE');
    expect(me.plan.status).toBe('ACTIVE');
    expect(me.plan.interval).toBeNull();
    expect(me.balance.available).toBe(signup);
    expect(me.balance.lowCreditThreshold).toBe(5);
    expect(me.balance.isLow).toBe(false);
    expect(me.balance.lots).toHaveLength(1);
    expect(me.balance.lots[0]).toMatchObject({ source: 'SIGNUP_BONUS', granted: signup, remaining: signup, expiresAt: null });

    const ledger = await t.app.gql(MyLedgerDocument, { first: 10 }, { sub: 'alice' });
    expect(ledger.data!.me.ledger.totalCount).toBe(1);
    expect(ledger.data!.me.ledger.edges[0].node).toMatchObject({ kind: 'GRANT', amount: signup, balanceAfter: signup });
  });

  it('opens exactly one account and grants the bonus once when twenty first requests race', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, () => t.app.gql(MeDocument, {}, { sub: 'racer' })));
    for (const r of results) {
      expect(r.errors).toBeUndefined();
      expect(r.data!.me.balance.available).toBe(signup);
    }
    const accounts = await t.app.audit.query(`SELECT count(*)::int AS n FROM accounts WHERE id = 'racer'`);
    const grants = await t.app.audit.query(`SELECT count(*)::int AS n, sum(amount)::int AS total FROM ledger_entries WHERE account_id = 'racer'`);
    const lots = await t.app.audit.query(`SELECT count(*)::int AS n FROM credit_lots WHERE account_id = 'racer'`);
    expect(accounts.rows[0].n).toBe(1);
    expect(grants.rows[0]).toEqual({ n: 1, total: signup });
    expect(lots.rows[0].n).toBe(1);
  });

  it('lets an admin read any account and answers null for an unknown one', async () => {
    await openAccount(t.app, 'bob');
    const found = await t.app.gql(AccountByIdDocument, { id: 'bob' }, ADMIN);
    expect(found.data!.account).toEqual({ id: 'bob', balance: { available: signup }, plan: { tier: { code: 'FREE' } } });
    const missing = await t.app.gql(AccountByIdDocument, { id: 'nobody-here' }, ADMIN);
    expect(missing.errors).toBeUndefined();
    expect(missing.data!.account).toBeNull();
  });

  it('does not open accounts for admins or workers who only act on others', async () => {
    await t.app.gql(AccountByIdDocument, { id: 'bob' }, { sub: 'ops-2', role: Role.ADMIN });
    const rows = await t.app.audit.query(`SELECT count(*)::int AS n FROM accounts WHERE id = 'ops-2'`);
    expect(rows.rows[0].n).toBe(0);
  });

  it('serves the seeded catalog without a token', async () => {
    const res = await t.app.gql(CatalogDocument, {}, null);
    expect(res.errors).toBeUndefined();
    const { tiers, creditPacks, models } = res.data!;
    expect(tiers.map((x) => [x.code, x.monthlyCredits, x.queueClass, x.monthlyPriceCents])).toEqual([
      ['FREE', 0, 'STANDARD', 0],
      ['CREATOR', 300, 'PRIORITY', 1200],
      ['PRO', 1000, 'FAST', 2900],
      ['MAX', 3000, 'INSTANT', 7900],
    ]);
    expect(tiers[0].signupCredits).toBe(25);
    expect(tiers[3].features).toHaveLength(7);
    expect(creditPacks.map((p) => [p.code, p.credits, p.priceCents])).toEqual([
      ['STARTER', 50, 500],
      ['CREATOR', 200, 1800],
      ['PRO', 500, 4000],
    ]);
    expect(models.filter((m) => m.premium).map((m) => m.code)).toEqual(['lumen-image-pro', 'lumen-video-pro']);
  });
});
