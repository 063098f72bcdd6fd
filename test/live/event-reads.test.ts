/**
 * One read per live event per instance, whatever the number of subscribers: every local
 * subscriber of an account is handed the very same event object, and what its payload needs
 * from the database (the job row, the lots, the notification row) is read once for that event;
 * subscribers of one operation and caller share one execution of it (src/http/shared-subscribe.ts).
 */
import { parse } from 'graphql';
import { readOnce } from '../../src/common/events/event-reads';
import { Balance } from '../../src/modules/ledger/balance.type';
import { BalanceResolver } from '../../src/modules/ledger/balance.resolver';
import { adjustCredits, openAccount } from '../helpers/accounts';
import { subscribe, type Subscription } from '../helpers/subscriptions';
import { eventually, useTestApp } from '../helpers/test-app';

const t = useTestApp({ TEST_CLOCK: '1', JOB_SWEEP_INTERVAL_MS: '3600000' });
const STANDARD = '{ type: IMAGE, imageQuality: STANDARD }';
const SUBSCRIBERS = 10;

const JOBS = parse('subscription { jobUpdated { id status progress refunded } }');
const BALANCES = parse('subscription { balanceChanged { available lots { id source granted remaining } } }');
const NOTIFICATIONS = parse('subscription { notificationAdded { id kind message purchaseId readAt } }');

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function gql<T = Record<string, any>>(sub: string, query: string): Promise<T> {
  const r = await t.app.raw<T>(query, undefined, { sub });
  expect(r.errors).toBeUndefined();
  return r.data!;
}

/** `n` subscriptions of `doc` on one socket of `sub` (at most 25 operations a socket). */
function many(sub: string, doc: ReturnType<typeof parse>, n = SUBSCRIBERS): Subscription<any>[] {
  const client = t.app.ws({ sub });
  return Array.from({ length: n }, () => subscribe<any, any>(client, doc as never, {}));
}

/** Waits until every subscription holds `n` events, and answers them. */
const all = (subs: Subscription<any>[], n: number) => Promise.all(subs.map((s) => s.waitFor(n)));

/** The account's lots as the lots field shows them (the ledger's spending order), read by the auditor. */
const lotsOf = (accountId: string) =>
  t.app.rows('SELECT id, source, granted, remaining FROM credit_lots WHERE account_id = $1 AND remaining > 0 ORDER BY expires_at ASC NULLS LAST, created_at, id', [accountId]);

afterEach(() => {
  jest.restoreAllMocks();
});

describe('reads of live events', () => {
  it('hands every local subscriber of an account the very same event object', async () => {
    await openAccount(t.app, 'same-object', { balance: 20 });
    const bus = t.app.server.services.events;
    const its = Array.from({ length: 3 }, () => bus.subscribe('balance', 'same-object')[Symbol.asyncIterator]());
    // Each one's events up to the adjustment's (the setup's own event may still arrive first).
    const received = its.map(async (it) => {
      const got: object[] = [];
      for (;;) {
        const r = await it.next(); // the first call starts listening
        got.push(r.value);
        if (r.done || r.value.available === 25) return got;
      }
    });
    await eventually(() => bus.subscribers('balance', 'same-object') === 3);
    await adjustCredits(t.app, 'same-object', 5); // through NOTIFY and the listener, as in production
    const [a, b, c] = await Promise.all(received);
    expect(a[a.length - 1]).toMatchObject({ type: 'balance', accountId: 'same-object', available: 25 });
    expect([b.length, c.length]).toEqual([a.length, a.length]);
    a.forEach((event, i) => {
      expect(b[i]).toBe(event);
      expect(c[i]).toBe(event);
    });
    await Promise.all(its.map((it) => it.return?.()));
  });

  it('ten subscribers of one account share one read per event', async () => {
    const acct = 'crowd';
    await openAccount(t.app, acct, { balance: 50 });
    const { services } = t.app.server;
    const jobs = many(acct, JOBS);
    const balances = many(acct, BALANCES);
    await eventually(() => services.events.subscribers('job', acct) === SUBSCRIBERS && services.events.subscribers('balance', acct) === SUBSCRIBERS);
    // balanceChanged starts with the balance as it is now: a read of each subscriber's own.
    await all(balances, 1);
    for (const s of balances) s.events.length = 0;

    const jobReads = jest.spyOn(services.generations, 'get');
    const lotReads = jest.spyOn(services.ledger, 'lots');
    const expectedBalances: unknown[] = [];
    const step = async (change: () => Promise<unknown>, n: { jobs: number; balances: number }) => {
      await change();
      await all(jobs, n.jobs);
      await all(balances, n.balances);
      // Every subscriber has its payload: the lots are as they were when it was read.
      const { available } = await t.app.one<{ available: number }>('SELECT available FROM accounts WHERE id = $1', [acct]);
      expectedBalances.push({ balanceChanged: { available, lots: await lotsOf(acct) } });
    };

    let job = '';
    await step(async () => {
      job = (await gql(acct, `mutation { startGeneration(input: { settings: ${STANDARD}, prompt: "p" }) { job { id } } }`)).startGeneration.job.id;
    }, { jobs: 1, balances: 1 });
    await step(() => gql(acct, `mutation { cancelGeneration(jobId: "${job}") { job { status } } }`), { jobs: 2, balances: 2 });
    await step(() => adjustCredits(t.app, acct, 5), { jobs: 2, balances: 3 });
    await pause(200); // nothing more arrives, and no read comes late

    const expectedJobs = [
      { jobUpdated: { id: job, status: 'QUEUED', progress: 0, refunded: false } },
      { jobUpdated: { id: job, status: 'CANCELED', progress: 0, refunded: true } },
    ];
    for (const s of jobs) expect([s.events, s.errors]).toEqual([expectedJobs, []]);
    expect((expectedBalances as { balanceChanged: { available: number } }[]).map((b) => b.balanceChanged.available)).toEqual([49, 50, 55]);
    for (const s of balances) expect([s.events, s.errors]).toEqual([expectedBalances, []]);
    // One read per event, not one per subscriber.
    expect({ jobReads: jobReads.mock.calls, lotReads: lotReads.mock.calls }).toEqual({ jobReads: [[acct, job], [acct, job]], lotReads: [[acct], [acct], [acct]] });

    await Promise.all([...jobs, ...balances].map((s) => s.dispose()));
  });

  it('ten subscribers of notificationAdded share one read of each notification', async () => {
    const acct = 'crowd-notified';
    await openAccount(t.app, acct);
    const { services } = t.app.server;
    const subs = many(acct, NOTIFICATIONS);
    await eventually(() => services.events.subscribers('notification', acct) === SUBSCRIBERS);
    const reads = jest.spyOn(services.notifications, 'get');

    const expected: unknown[] = [];
    for (const key of ['first', 'second']) {
      await gql(acct, `mutation { purchaseCreditPack(input: { packCode: "STARTER", idempotencyKey: "${key}" }) { purchase { id } } }`);
      await all(subs, expected.length + 1);
      const newest = (await gql(acct, '{ me { notifications(first: 1) { edges { node { id kind message purchaseId readAt } } } } }')).me.notifications.edges[0].node;
      expect(newest).toMatchObject({ kind: 'PURCHASE_COMPLETED', readAt: null });
      expected.push({ notificationAdded: newest });
    }
    await pause(200);

    for (const s of subs) expect([s.events, s.errors]).toEqual([expected, []]);
    const ids = expected.map((e) => (e as { notificationAdded: { id: string } }).notificationAdded.id);
    expect(reads.mock.calls).toEqual(ids.map((id) => [acct, id]));

    await Promise.all(subs.map((s) => s.dispose()));
  });
});

describe('readOnce', () => {
  it('keeps the event a balance was pushed for out of its JSON and its keys, and a query’s balance has none', () => {
    const event = { type: 'balance' as const, accountId: 'a', available: 3, lowCreditThreshold: 5 };
    const pushed = Balance.of(event, { event });
    expect(pushed.event).toBe(event);
    expect(JSON.parse(JSON.stringify(pushed))).toEqual({ accountId: 'a', available: 3, lowCreditThreshold: 5, isLow: true });
    expect(Object.keys(pushed)).not.toContain('event');
    expect(Balance.of(event).event).toBeUndefined();
  });

  it('starts one read per event and name, which every caller for that event shares', async () => {
    const event = { type: 'job' };
    const other = { type: 'job' }; // equal, but another event
    let n = 0;
    const read = async () => ({ n: ++n });
    const [a, b] = await Promise.all([readOnce(event, 'job', read), readOnce(event, 'job', read)]);
    expect(b).toBe(a);
    expect(await readOnce(event, 'job', read)).toBe(a); // a later subscriber of the same event
    expect(await readOnce(event, 'lots', read)).toEqual({ n: 2 });
    expect(await readOnce(other, 'job', read)).toEqual({ n: 3 });
  });

  it('keeps no failed read: callers at that moment share the failure, a later one reads again', async () => {
    const event = {};
    let n = 0;
    const read = async () => {
      if (++n === 1) throw new Error('the database is away');
      return n;
    };
    const first = [readOnce(event, 'row', read), readOnce(event, 'row', read)];
    await expect(first[0]).rejects.toThrow('the database is away');
    await expect(first[1]).rejects.toThrow('the database is away');
    expect(await readOnce(event, 'row', read)).toBe(2);
    expect(await readOnce(event, 'row', read)).toBe(2);
    expect(n).toBe(2);
  });

  it('answers a read that throws at once with a rejected promise, not a throw', async () => {
    const p = readOnce({}, 'row', () => {
      throw new Error('at once');
    });
    await expect(p).rejects.toThrow('at once');
  });

  it('runs an event\'s selection once for all subscribers of one operation and caller; other variables or callers run their own', async () => {
    const acct = 'crowd-shared';
    await openAccount(t.app, acct, { balance: 30 });
    await openAccount(t.app, 'crowd-shared-admin-view');
    const { services } = t.app.server;
    const same = many(acct, BALANCES);
    // The same selection under another variable set (an operation of its own).
    const other = subscribe<any, any>(t.app.ws({ sub: acct }), parse('subscription($w: ID) { balanceChanged(workspaceId: $w) { available lots { id source granted remaining } } }') as never, { w: null });
    await eventually(() => services.events.subscribers('balance', acct) === SUBSCRIBERS + 1);
    await all([...same, other], 1); // each one's current balance first (its own read and execution)
    for (const s of [...same, other]) s.events.length = 0;
    const executions = jest.spyOn(BalanceResolver.prototype, 'balanceChanged');
    await adjustCredits(t.app, acct, 4);
    await all([...same, other], 1);
    await pause(100);
    const expected = { balanceChanged: { available: 34, lots: await lotsOf(acct) } };
    for (const s of [...same, other]) expect([s.events, s.errors]).toEqual([[expected], []]);
    // One execution for the ten, one for the other operation.
    expect(executions).toHaveBeenCalledTimes(2);
    await Promise.all([...same, other].map((s) => s.dispose()));
  });
});
