/**
 * Money moves as intent → commit → provider call → completion, under one key: the service (a
 * real child process) is killed with SIGKILL at each step of each kind of money movement — right
 * after the intent committed, right after the provider answered, right after the completion
 * committed — and started again on the same database. The client then retries with its key (or,
 * for calls without a key, the reconciler finds the intent left open a few minutes later). The
 * end state is always exactly one payment at the provider and one effect here: one purchase
 * completed, one grant, one refund, one cancellation — and no intent left open.
 *
 * The sandbox provider keeps its payments in its own table, keyed by idempotency key as Stripe
 * does, so it survives the kill like a real provider would.
 */
import { Pool } from 'pg';
import { Role } from '../../src/common/auth/role.enum';
import { freePort } from '../../src/common/db/embedded-postgres';
import { signupCreditsAt } from '../helpers/accounts';
import { assertLedgerInvariants } from '../helpers/invariants';
import { startService, type ServiceProcess } from '../helpers/process';
import { createTestDatabase, eventually, TEST_JWT_SECRET, testToken } from '../helpers/test-app';

type Step = 'committed' | 'called' | 'completed';
const STEPS: Step[] = ['committed', 'called', 'completed'];

let url: string;
let db: Pool;
let port: number;
let svc: ServiceProcess | undefined;

beforeAll(async () => {
  url = await createTestDatabase();
  db = new Pool({ connectionString: url, max: 2 });
  port = await freePort();
});

afterAll(async () => {
  if (svc && svc.child.exitCode === null) {
    svc.child.kill('SIGKILL');
    await svc.exited;
  }
  await db.end();
});

afterEach(async () => {
  await assertLedgerInvariants(db);
});

/** Starts the service (killing itself at `killAt`, when given) and waits until it is ready. */
async function start(killAt?: string): Promise<void> {
  if (svc && svc.child.exitCode === null) {
    svc.child.kill('SIGKILL');
    await svc.exited;
  }
  svc = startService({
    DATABASE_URL: url, JWT_SECRET: TEST_JWT_SECRET, PORT: String(port), HOST: '127.0.0.1', NODE_ENV: 'test', LOG_LEVEL: 'warn',
    SIMULATED_WORKER: '0', TEST_CLOCK: '1', TEST_CLOCK_START: '2025-01-31T18:00:00Z', JOB_SWEEP_INTERVAL_MS: '3600000', FAULT_KILL_AT: killAt,
  });
  await eventually(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200, 60000);
}

/** One GraphQL request; undefined when the connection died (the kill) before an answer came. */
async function gql<T = any>(sub: string, query: string, variables: Record<string, unknown> = {}, role = Role.USER): Promise<T | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await testToken(sub, role)}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data?: T; errors?: unknown[] };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  } catch (e) {
    if ((e as Error).message === 'fetch failed') return undefined; // the connection died with the process
    throw e;
  }
}

/** Sends a request that the kill interrupts: the process must die of SIGKILL at the named step. */
async function interrupted(send: () => Promise<unknown>): Promise<void> {
  await send();
  const exit = await svc!.exited;
  expect(exit.signal).toBe('SIGKILL');
}

/** Minutes later: the reconciler (run with the timed work the test clock triggers) drives what was left open. */
async function reconcileLater(): Promise<void> {
  await gql('crash-admin', 'mutation { advanceTestClock(hours: 0.1) }', {}, Role.ADMIN);
}

const BUY = `mutation ($key: String) { purchaseCreditPack(input: { packCode: "STARTER", idempotencyKey: $key }) { purchase { id status } userErrors { code } } }`;
const PLAN = `mutation ($tier: TierCode!, $key: String) { changePlan(input: { tier: $tier, interval: MONTHLY, idempotencyKey: $key }) { purchase { id status amountCents credits } userErrors { code } } }`;

const one = async (sql: string, params: unknown[]) => (await db.query(sql, params)).rows[0];
const n = async (sql: string, params: unknown[]) => Number((await db.query(`SELECT count(*) AS n FROM ${sql}`, params)).rows[0].n);
const openIntents = (sub: string) => n(`payment_intents WHERE account_id = $1 AND status = 'OPEN'`, [sub]);
/** The catalog's sign-up credits, as the running service tells them. */
const signup = () => signupCreditsAt(`http://127.0.0.1:${port}/graphql`);

describe.each(STEPS)('killed right after the intent %s', (step) => {
  it('buys a pack once: one payment at the provider, one purchase completed, one grant (the client retries with its key)', async () => {
    const sub = `crash-pack-${step}`;
    await start(`pack.charge:${step}`);
    await interrupted(() => gql(sub, BUY, { key: 'pack-1' }));
    await start();
    const retry = await gql(sub, BUY, { key: 'pack-1' });
    expect(retry!.purchaseCreditPack).toMatchObject({ purchase: { status: 'COMPLETED' }, userErrors: [] });
    const id = retry!.purchaseCreditPack.purchase.id;
    expect(await n(`sandbox_payments WHERE key = $1`, [`purchase-${id}`])).toBe(1);
    expect(await n(`purchases WHERE account_id = $1`, [sub])).toBe(1);
    expect(await n(`ledger_entries WHERE account_id = $1 AND kind = 'GRANT' AND purchase_id = $2`, [sub, id])).toBe(1);
    expect((await one('SELECT available FROM accounts WHERE id = $1', [sub])).available).toBe((await signup()) + 50);
    expect(await openIntents(sub)).toBe(0);
  }, 120000);

  it('starts a plan once: one subscription payment, one period, one allowance grant', async () => {
    const sub = `crash-plan-${step}`;
    await start(`plan.subscribe:${step}`);
    await interrupted(() => gql(sub, PLAN, { tier: 'PRO', key: 'plan-1' }));
    await start();
    const retry = await gql(sub, PLAN, { tier: 'PRO', key: 'plan-1' });
    expect(retry!.changePlan).toMatchObject({ purchase: { status: 'COMPLETED', amountCents: 2900, credits: 1000 }, userErrors: [] });
    const id = retry!.changePlan.purchase.id;
    expect(await n(`sandbox_payments WHERE key = $1`, [`plan-checkout-${id}`])).toBe(1);
    expect(await n(`sandbox_subscriptions WHERE account_id = $1 AND status = 'ACTIVE'`, [sub])).toBe(1);
    expect(await n(`allowance_grants WHERE account_id = $1`, [sub])).toBe(1);
    expect(await one('SELECT tier, plan_status, available FROM accounts WHERE id = $1', [sub])).toEqual({ tier: 'PRO', plan_status: 'ACTIVE', available: (await signup()) + 1000 });
    expect(await openIntents(sub)).toBe(0);
  }, 120000);

  it('upgrades once: one prorated payment, the tier once, the prorated credits once', async () => {
    const sub = `crash-upgrade-${step}`;
    await start(`plan.upgrade:${step}`);
    expect((await gql(sub, PLAN, { tier: 'CREATOR', key: 'start' }))!.changePlan.userErrors).toEqual([]);
    await interrupted(() => gql(sub, PLAN, { tier: 'MAX', key: 'up-1' }));
    await start();
    const retry = await gql(sub, PLAN, { tier: 'MAX', key: 'up-1' });
    expect(retry!.changePlan).toMatchObject({ purchase: { status: 'COMPLETED' }, userErrors: [] });
    const { id, credits, amountCents } = retry!.changePlan.purchase;
    expect(amountCents).toBeGreaterThan(6690); // (7900 − 1200) × nearly the whole month left, rounded up
    expect(await n(`sandbox_payments WHERE key = $1`, [`plan-upgrade-${id}`])).toBe(1);
    expect(await n(`ledger_entries WHERE account_id = $1 AND kind = 'GRANT' AND purchase_id = $2`, [sub, id])).toBe(1);
    expect(await one('SELECT tier, available FROM accounts WHERE id = $1', [sub])).toEqual({ tier: 'MAX', available: (await signup()) + 300 + credits });
    expect(await openIntents(sub)).toBe(0);
  }, 120000);

  it('cancels once: the subscription told to stop at the period end, once, by the reconciler when nobody retries', async () => {
    const sub = `crash-cancel-${step}`;
    await start(`subscription.cancel_at_period_end:${step}`);
    expect((await gql(sub, PLAN, { tier: 'PRO', key: 'start' }))!.changePlan.userErrors).toEqual([]);
    await interrupted(() => gql(sub, 'mutation { cancelPlan { userErrors { code } } }'));
    await start();
    // The decision was committed before the provider was called: the plan is cancelled here already.
    expect(await one('SELECT cancel_at_period_end FROM accounts WHERE id = $1', [sub])).toEqual({ cancel_at_period_end: true });
    await reconcileLater();
    expect(await one('SELECT cancel_at_period_end FROM sandbox_subscriptions WHERE account_id = $1', [sub])).toEqual({ cancel_at_period_end: true });
    expect(await n(`payment_intents WHERE account_id = $1 AND kind = 'subscription.cancel_at_period_end' AND status = 'DONE'`, [sub])).toBe(1);
    expect(await openIntents(sub)).toBe(0);
  }, 120000);

  it('refunds once: one refund at the provider under the request’s key, the credits withdrawn once', async () => {
    const sub = `crash-refund-${step}`;
    await start(`refund:${step}`);
    const bought = await gql(sub, BUY, { key: 'to-refund' });
    const purchaseId = bought!.purchaseCreditPack.purchase.id;
    await interrupted(() => gql(sub, 'mutation ($p: ID!) { requestRefund(input: { purchaseId: $p }) { refundRequest { status } } }', { p: purchaseId }));
    await start();
    await reconcileLater();
    const [r] = (await db.query(`SELECT id, status, provider_ref FROM refund_requests WHERE purchase_id = $1`, [purchaseId])).rows;
    expect(r.status).toBe('APPROVED');
    expect(r.provider_ref).toMatch(/^sandbox_refund_/);
    expect(await n(`sandbox_payments WHERE key = $1`, [`refund-${r.id}`])).toBe(1);
    expect(await n(`ledger_entries WHERE account_id = $1 AND kind = 'REVOCATION'`, [sub])).toBe(1);
    expect(await one('SELECT status FROM purchases WHERE id = $1', [purchaseId])).toEqual({ status: 'REFUNDED' });
    expect((await one('SELECT available FROM accounts WHERE id = $1', [sub])).available).toBe(await signup());
    expect(await openIntents(sub)).toBe(0);
  }, 120000);

  it('auto top-up buys once: one off-session payment, one automatic purchase, one grant, nothing left in flight (nobody retries)', async () => {
    const sub = `crash-auto-${step}`;
    await start(`pack.charge_saved:${step}`);
    const set = await gql(sub, 'mutation { setAutoTopUp(input: { packCode: "STARTER", belowCredits: 1000, maxPerMonth: 2 }) { userErrors { code } } }');
    expect(set!.setAutoTopUp.userErrors).toEqual([]);
    // An operator's debit falls below the level: the purchase is made after that commit, and the kill comes in the middle of it.
    await interrupted(() => gql('crash-admin', `mutation { adjustCredits(input: { accountId: "${sub}", amount: -1, reason: "fall" }) { userErrors { code } } }`, {}, Role.ADMIN));
    await start();
    await reconcileLater();
    const bought = (await db.query(`SELECT id, status FROM purchases WHERE account_id = $1 AND automatic`, [sub])).rows;
    expect(bought.map((p) => p.status)).toEqual(['COMPLETED']);
    expect(await n(`sandbox_payments WHERE key = $1`, [`purchase-${bought[0].id}`])).toBe(1);
    expect(await n(`ledger_entries WHERE account_id = $1 AND kind = 'GRANT' AND purchase_id = $2`, [sub, bought[0].id])).toBe(1);
    expect((await one('SELECT available FROM accounts WHERE id = $1', [sub])).available).toBe((await signup()) - 1 + 50);
    expect(await one('SELECT requested_at, purchase_id, failed_attempts FROM auto_top_ups WHERE account_id = $1', [sub])).toEqual({ requested_at: null, purchase_id: null, failed_attempts: 0 });
    expect(await openIntents(sub)).toBe(0);
  }, 120000);
});

it('buys a pack once when the client never comes back after a kill right after the provider answered: the reconciler finishes it', async () => {
  const sub = 'crash-pack-alone';
  await start('pack.charge:called');
  await interrupted(() => gql(sub, BUY, {}));
  await start();
  await reconcileLater();
  const [p] = (await db.query(`SELECT id, status FROM purchases WHERE account_id = $1`, [sub])).rows;
  expect(p.status).toBe('COMPLETED');
  expect(await n(`sandbox_payments WHERE key = $1`, [`purchase-${p.id}`])).toBe(1);
  expect((await one('SELECT available FROM accounts WHERE id = $1', [sub])).available).toBe((await signup()) + 50);
  expect(await openIntents(sub)).toBe(0);
}, 120000);
