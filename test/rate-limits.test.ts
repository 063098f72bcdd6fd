/**
 * Rate limits (issue 13, part 3): per account and per client address, on mutations and on
 * websocket subscribe, shared by the instances through PostgreSQL; a refusal is RATE_LIMITED
 * with retryAfterSeconds and writes nothing. Windows are an hour long here, so no assertion
 * depends on a window ending while a test runs.
 */
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { Role } from '../src/common/auth/role.enum';
import { addressKey } from '../src/common/limits/client-address';
import { LEASE_MAX } from '../src/common/limits/rate-limits';
import { BalanceChangedDocument, CancelGenerationDocument, StartGenerationDocument } from './graphql/generated';
import { openAccount } from './helpers/accounts';
import { subscribe } from './helpers/subscriptions';
import { eventually, startTestApp, type TestApp } from './helpers/test-app';

const HOUR = { RATE_LIMIT_WINDOW_SECONDS: '3600' };
const apps: TestApp[] = [];
afterEach(async () => {
  for (const a of apps) await a.checkInvariants();
});
afterAll(async () => {
  for (const a of apps) await a.stop();
});

async function appWith(env: Record<string, string>, databaseUrl?: string): Promise<TestApp> {
  const app = await startTestApp({ ...HOUR, ...env }, databaseUrl);
  apps.push(app);
  return app;
}

type Refusal = { message: string; extensions?: { code?: string; retryAfterSeconds?: number } };

/** A mutation over HTTP as `sub`, from `forwardedFor` when given (the app trusts one proxy hop then). */
async function post(app: TestApp, query: string, sub?: string, forwardedFor?: string): Promise<{ data?: Record<string, unknown> | null; errors?: Refusal[] }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (sub) headers.authorization = `Bearer ${await app.token(sub)}`;
  if (forwardedFor) headers['x-forwarded-for'] = forwardedFor;
  const res = await fetch(app.url, { method: 'POST', headers, body: JSON.stringify({ query }) });
  return (await res.json()) as { data?: Record<string, unknown> | null; errors?: Refusal[] };
}

const threshold = (n: number) => `mutation { setLowCreditThreshold(threshold: ${n}) { lowCreditThreshold } }`;
const codeOf = (r: { errors?: Refusal[] }) => r.errors?.[0]?.extensions?.code;

describe('rate limits per account', () => {
  it('refuses the sixth change of an account in a window with RATE_LIMITED and retryAfterSeconds, and writes nothing', async () => {
    const app = await appWith({ RATE_LIMIT_ACCOUNT_MUTATIONS: '5' });
    await openAccount(app, 'busy');
    await openAccount(app, 'calm');
    for (let i = 1; i <= 5; i++) expect((await post(app, threshold(i), 'busy')).errors).toBeUndefined();
    const purchasesBefore = await app.one<{ n: number }>('SELECT count(*)::int AS n FROM purchases WHERE account_id = $1', ['busy']);
    const refused = await post(app, 'mutation { purchaseCreditPack(input: { packCode: "STARTER" }) { purchase { id } } }', 'busy');
    const refusedToo = await post(app, threshold(99), 'busy');
    expect([codeOf(refused), codeOf(refusedToo)]).toEqual(['RATE_LIMITED', 'RATE_LIMITED']);
    const retry = refused.errors![0].extensions!.retryAfterSeconds!;
    expect(Number.isInteger(retry) && retry >= 1 && retry <= 3600).toBe(true);
    // Nothing written: no purchase, the threshold of the fifth change.
    const after = await app.one<{ n: number; t: number }>('SELECT (SELECT count(*)::int FROM purchases WHERE account_id = $1) AS n, low_credit_threshold AS t FROM accounts WHERE id = $1', ['busy']);
    expect(after).toEqual({ n: purchasesBefore.n, t: 5 });
    // Another account is not held back; queries of the limited one still answer.
    expect((await post(app, threshold(7), 'calm')).errors).toBeUndefined();
    expect((await post(app, '{ me { balance { lowCreditThreshold } } }', 'busy')).data).toEqual({ me: { balance: { lowCreditThreshold: 5 } } });
  });

  it('counts each aliased mutation of one request', async () => {
    const app = await appWith({ RATE_LIMIT_ACCOUNT_MUTATIONS: '2' });
    await openAccount(app, 'aliases');
    const r = await post(app, 'mutation { a: setLowCreditThreshold(threshold: 1) { lowCreditThreshold } b: setLowCreditThreshold(threshold: 2) { lowCreditThreshold } c: setLowCreditThreshold(threshold: 3) { lowCreditThreshold } }', 'aliases');
    expect(r.errors!.map((e) => [e.extensions!.code, (e as unknown as { path: string[] }).path])).toEqual([['RATE_LIMITED', ['c']]]);
    expect((await app.one<{ t: number }>('SELECT low_credit_threshold AS t FROM accounts WHERE id = $1', ['aliases'])).t).toBe(2);
  });

  it('refuses the third cancellation of a day with RATE_LIMITED and leaves that job queued and charged', async () => {
    const app = await appWith({ RATE_LIMIT_ACCOUNT_CANCELS_PER_DAY: '2' });
    await openAccount(app, 'canceller', { balance: 100 });
    const jobs: string[] = [];
    for (let i = 0; i < 3; i++) {
      const s = await app.gql(StartGenerationDocument, { input: { settings: { type: 'IMAGE', imageQuality: 'STANDARD' }, prompt: `p${i}` } }, { sub: 'canceller' });
      jobs.push(s.data!.startGeneration.job!.id);
    }
    const cancels = [];
    for (const id of jobs) cancels.push(await app.gql(CancelGenerationDocument, { jobId: id }, { sub: 'canceller' }));
    expect(cancels.map((c) => c.errors?.[0]?.extensions?.code ?? c.data!.cancelGeneration.job!.status)).toEqual(['CANCELED', 'CANCELED', 'RATE_LIMITED']);
    const rows = await app.rows<{ status: string }>('SELECT status FROM generation_jobs WHERE id = ANY($1) ORDER BY created_at', [jobs]);
    expect(rows.map((r) => r.status)).toEqual(['CANCELED', 'CANCELED', 'QUEUED']);
    expect((await app.one<{ available: number }>('SELECT available FROM accounts WHERE id = $1', ['canceller'])).available).toBe(99);
  });

  it('does not limit workers', async () => {
    const app = await appWith({ RATE_LIMIT_ACCOUNT_MUTATIONS: '1', RATE_LIMIT_ADDRESS_MUTATIONS: '1', TRUST_PROXY: '1' });
    const claims = [];
    for (let i = 0; i < 4; i++) {
      claims.push(await app.raw('mutation { claimGenerationJob { id } }', undefined, { sub: 'gpu-1', role: Role.WORKER }));
    }
    expect(claims.map((c) => [c.errors, c.data])).toEqual(Array(4).fill([undefined, { claimGenerationJob: null }]));
  });
});

describe('rate limits per client address', () => {
  it('counts the accounts of one address together, and another address apart', async () => {
    const app = await appWith({ RATE_LIMIT_ADDRESS_MUTATIONS: '4', TRUST_PROXY: '1' });
    for (const sub of ['a1', 'a2', 'a3', 'b1']) await openAccount(app, sub);
    const from = '203.0.113.7';
    const got = [];
    for (const sub of ['a1', 'a2', 'a1', 'a2', 'a3']) got.push(codeOf(await post(app, threshold(3), sub, from)) ?? 'ok');
    expect(got).toEqual(['ok', 'ok', 'ok', 'ok', 'RATE_LIMITED']);
    // Unauthenticated callers are counted by their address too.
    expect(codeOf(await post(app, threshold(3), undefined, from))).toBe('RATE_LIMITED');
    expect(codeOf(await post(app, threshold(3), 'b1', '198.51.100.9')) ?? 'ok').toBe('ok');
  });

  it('counts an IPv6 client by its /64 and an IPv4-mapped address as its IPv4 address; loopback not at all', () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2:ffff:1:2:3')).toBe('2001:db8:1:2::/64');
    expect(addressKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect([addressKey('127.0.0.1'), addressKey('::1'), addressKey('::ffff:127.0.0.1'), addressKey('not an address')]).toEqual([undefined, undefined, undefined, undefined]);
  });
});

describe('rate limits on websocket subscribe', () => {
  it('refuses the fourth subscription of an account in a window with RATE_LIMITED', async () => {
    const app = await appWith({ RATE_LIMIT_ACCOUNT_SUBSCRIBES: '3' });
    await openAccount(app, 'watcher');
    const client = app.ws({ sub: 'watcher' });
    const subs = [0, 1, 2].map(() => subscribe(client, BalanceChangedDocument));
    for (const s of subs) await s.waitFor(1); // the current balance first: each one is live
    const fourth = subscribe(client, BalanceChangedDocument);
    await eventually(() => fourth.errors.length > 0);
    expect((fourth.errors[0] as Refusal[])[0].extensions).toEqual({ code: 'RATE_LIMITED', retryAfterSeconds: expect.any(Number) });
    expect(fourth.events).toEqual([]);
    await client.dispose();
  });

  it('counts the subscriptions of one forwarded address across accounts', async () => {
    const app = await appWith({ RATE_LIMIT_ADDRESS_SUBSCRIBES: '2', TRUST_PROXY: '1' });
    const from = (address: string) =>
      class extends WebSocket {
        constructor(url: string, protocols?: string | string[]) {
          super(url, protocols, { headers: { 'x-forwarded-for': address } });
        }
      };
    const clientOf = (sub: string, address: string) =>
      createClient({ url: app.server.wsUrl, webSocketImpl: from(address), lazy: true, retryAttempts: 0, connectionParams: async () => ({ authorization: `Bearer ${await app.token(sub)}` }) });
    const [c1, c2, c3] = [clientOf('w1', '203.0.113.8'), clientOf('w2', '203.0.113.8'), clientOf('w3', '198.51.100.10')];
    const first = [subscribe(c1, BalanceChangedDocument), subscribe(c2, BalanceChangedDocument)];
    for (const s of first) await s.waitFor(1);
    const over = subscribe(c1, BalanceChangedDocument);
    const elsewhere = subscribe(c3, BalanceChangedDocument);
    await eventually(() => over.errors.length > 0);
    await elsewhere.waitFor(1);
    expect((over.errors[0] as Refusal[])[0].extensions!.code).toBe('RATE_LIMITED');
    for (const c of [c1, c2, c3]) await c.dispose();
  });
});

describe('rate limits shared by instances', () => {
  it('grants exactly the limit across two instances racing 1,200 changes (taken in leases; what is leased and unspent is counted)', async () => {
    const a = await appWith({ RATE_LIMIT_ACCOUNT_MUTATIONS: '1000', RATE_LIMIT_ADDRESS_MUTATIONS: '0' });
    const b = await appWith({ RATE_LIMIT_ACCOUNT_MUTATIONS: '1000', RATE_LIMIT_ADDRESS_MUTATIONS: '0' }, a.databaseUrl);
    await openAccount(a, 'shared');
    const token = await a.token('shared');
    let ok = 0;
    let limited = 0;
    const send = async (app: TestApp, n: number) => {
      for (let i = 0; i < n; i++) {
        const res = await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query: threshold(i % 50) }) });
        const body = (await res.json()) as { errors?: Refusal[] };
        if (!body.errors) ok++;
        else if (codeOf(body) === 'RATE_LIMITED') limited++;
        else throw new Error(JSON.stringify(body.errors));
      }
    };
    // Twenty concurrent senders per instance, 30 changes each: 1,200 in all, 1 of them was openAccount's read (a query, not counted).
    await Promise.all([a, b].flatMap((app) => Array.from({ length: 20 }, () => send(app, 30))));
    const unspent = a.server.services.rateLimits.unspent('mutation', 'account', 'shared') + b.server.services.rateLimits.unspent('mutation', 'account', 'shared');
    const counter = await a.one<{ points: number }>(`SELECT points FROM rate_limits WHERE key = 'mutation:account:shared'`);
    expect(ok + limited).toBe(1200);
    // Every point under the limit went to a change or is still leased to an instance: never more than the limit.
    expect(ok + unspent).toBe(1000);
    expect(unspent).toBeLessThanOrEqual(2 * LEASE_MAX);
    expect(counter.points).toBeGreaterThanOrEqual(1000);
  });

  it('keeps limiting on the instance when the shared store fails', async () => {
    const app = await appWith({ RATE_LIMIT_ACCOUNT_MUTATIONS: '3' });
    await openAccount(app, 'insured');
    await app.rows('ALTER TABLE rate_limits RENAME TO rate_limits_away');
    try {
      const got = [];
      for (let i = 1; i <= 4; i++) got.push(codeOf(await post(app, threshold(i), 'insured')) ?? 'ok');
      expect(got).toEqual(['ok', 'ok', 'ok', 'RATE_LIMITED']);
    } finally {
      await app.rows('ALTER TABLE rate_limits_away RENAME TO rate_limits');
    }
  });
});
