/**
 * No account can hold the pool (issue 13, part 2): a held account row makes that account's
 * changes wait in memory, one at a time, while every other account's requests still get a
 * connection; a change gives up after DB_LOCK_TIMEOUT_MS instead of waiting for ever; and the
 * wait per account is bounded (RATE_LIMITED beyond it).
 */
import type { PoolClient } from 'pg';
import { openAccount } from './helpers/accounts';
import { eventually, startTestApp, type TestApp } from './helpers/test-app';

const apps: TestApp[] = [];
afterAll(async () => {
  for (const a of apps) await a.stop();
});

async function appWith(env: Record<string, string>): Promise<TestApp> {
  const app = await startTestApp(env);
  apps.push(app);
  return app;
}

/** Holds `account`'s row (SELECT … FOR UPDATE in an open transaction) until release(). */
async function hold(app: TestApp, account: string): Promise<{ release: () => Promise<void> }> {
  const c: PoolClient = await app.audit.connect();
  await c.query('BEGIN');
  await c.query('SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE', [account]);
  return {
    release: async () => {
      await c.query('ROLLBACK');
      c.release();
    },
  };
}

const setThreshold = (app: TestApp, sub: string, n: number) =>
  app.raw<{ setLowCreditThreshold: { lowCreditThreshold: number } }>(`mutation { setLowCreditThreshold(threshold: ${n}) { lowCreditThreshold } }`, undefined, { sub });

describe('an account whose row is held', () => {
  it('keeps the other accounts answering: 12 waiting changes of one account take one connection of a pool of 4, not all', async () => {
    const app = await appWith({ DB_POOL_SIZE: '4', DB_LOCK_TIMEOUT_MS: '20000' });
    await openAccount(app, 'held');
    await openAccount(app, 'free');
    const held = await hold(app, 'held');
    const waiting = Array.from({ length: 12 }, (_, i) => setThreshold(app, 'held', i + 1));
    // All twelve arrived: one waits on the lock (holding a connection), eleven wait in memory.
    await eventually(() => app.server.services.accountQueue.waitingFor('held') === 11, 10_000);
    // Meanwhile another account buys a pack and reads its balance: both answered while the row is still held.
    const bought = await app.raw<{ purchaseCreditPack: { purchase: { status: string } } }>('mutation { purchaseCreditPack(input: { packCode: "STARTER" }) { purchase { status } } }', undefined, { sub: 'free' });
    const read = await app.raw<{ me: { balance: { available: number } } }>('{ me { balance { available } } }', undefined, { sub: 'free' });
    expect([bought.errors, bought.data!.purchaseCreditPack.purchase.status, read.errors]).toEqual([undefined, 'COMPLETED', undefined]);
    const waitingOnLock = await app.one<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
    expect([Number(waitingOnLock.n), app.server.services.accountQueue.waitingFor('held')]).toEqual([1, 11]);
    await held.release();
    const done = await Promise.all(waiting);
    expect(done.map((r) => r.errors)).toEqual(Array(12).fill(undefined));
    const final = await app.one<{ t: number }>('SELECT low_credit_threshold AS t FROM accounts WHERE id = $1', ['held']);
    expect(done.map((r) => r.data!.setLowCreditThreshold.lowCreditThreshold)).toContain(final.t);
    await app.checkInvariants();
  });

  it('gives up a change after DB_LOCK_TIMEOUT_MS with SERVICE_UNAVAILABLE, changing nothing', async () => {
    const app = await appWith({ DB_LOCK_TIMEOUT_MS: '300' });
    await openAccount(app, 'stuck');
    const before = await app.one<{ t: number }>('SELECT low_credit_threshold AS t FROM accounts WHERE id = $1', ['stuck']);
    const held = await hold(app, 'stuck');
    const r = await setThreshold(app, 'stuck', before.t + 7);
    await held.release();
    expect(r.errors!.map((e) => [e.extensions!.code, e.message])).toEqual([
      ['SERVICE_UNAVAILABLE', 'Another change to this account is in progress; nothing was changed. Retry shortly with the same idempotencyKey'],
    ]);
    expect((await app.one<{ t: number }>('SELECT low_credit_threshold AS t FROM accounts WHERE id = $1', ['stuck'])).t).toBe(before.t);
    await app.checkInvariants();
  });

  it('lets at most ACCOUNT_QUEUE_MAX changes of one account wait, refusing the rest with RATE_LIMITED and retryAfterSeconds', async () => {
    const app = await appWith({ ACCOUNT_QUEUE_MAX: '3', DB_LOCK_TIMEOUT_MS: '20000' });
    await openAccount(app, 'crowded');
    const held = await hold(app, 'crowded');
    let settled = 0;
    const results = Promise.all(Array.from({ length: 6 }, (_, i) => setThreshold(app, 'crowded', i + 1).finally(() => settled++)));
    // One runs (on the lock), three wait, and two were refused at once: all six arrived.
    await eventually(() => app.server.services.accountQueue.waitingFor('crowded') === 3 && settled === 2, 10_000);
    await held.release();
    const codes = (await results).map((r) => r.errors?.map((e) => [e.extensions!.code, e.extensions!.retryAfterSeconds])[0] ?? 'OK');
    expect(codes.filter((c) => c === 'OK')).toHaveLength(4); // one running, three waiting
    expect(codes.filter((c) => c !== 'OK')).toEqual([['RATE_LIMITED', 1], ['RATE_LIMITED', 1]]);
    await app.checkInvariants();
  });
});
