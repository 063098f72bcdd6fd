import { readFileSync } from 'node:fs';
import { Role } from '../src/common/auth/role.enum';
import { buildAppSchema, printAppSchema, SCHEMA_FILE } from '../src/schema';
import { BalanceChangedDocument, MeDocument, SetLowCreditThresholdDocument } from './graphql/generated';
import { openAccount, signupCredits } from './helpers/accounts';
import { subscribe, untilLive } from './helpers/subscriptions';
import { startTestApp, useTestApp, type TestApp } from './helpers/test-app';

const t = useTestApp({ MAX_QUERY_DEPTH: '3', MAX_QUERY_COST: '1000' });

const DEEP = '{ me { plan { tier { code } } } }'; // depth 3: plan > tier > code below the root field
const DEEPER = '{ me { balance { lots { id } } ledger { edges { node { id } } } } }'; // depth 4
const COSTLY = `{ me { ${Array.from({ length: 6 }, (_, i) => `l${i}: ledger(first: 100) { edges { cursor } }`).join(' ')} } }`; // 6 x 201

describe('GraphQL hygiene', () => {
  it('keeps schema/schema.graphql in step with the code', async () => {
    const committed = readFileSync(SCHEMA_FILE, 'utf8');
    expect(committed).toBe(printAppSchema(await buildAppSchema()));
  });

  it('accepts a query at the depth limit and refuses one beyond it over HTTP', async () => {
    const ok = await t.app.raw(DEEP, undefined, { sub: 'depth' });
    expect(ok.errors).toBeUndefined();
    const deep = await t.app.raw(DEEPER, undefined, { sub: 'depth' });
    expect(deep.status).toBe(400);
    expect(deep.errors!.map((e) => [e.extensions!.code, e.message])).toEqual([['GRAPHQL_VALIDATION_FAILED', "'' exceeds maximum operation depth of 3"]]); // '': the operation has no name
  });

  it('refuses an alias-multiplied query by its cost over HTTP, and a single page passes', async () => {
    const one = await t.app.raw('{ me { ledger(first: 100) { edges { cursor } } } }', undefined, { sub: 'cost' });
    expect(one.errors).toBeUndefined();
    const res = await t.app.raw(COSTLY, undefined, { sub: 'cost' });
    expect(res.status).toBe(400);
    // 6 aliased pages of 100 edges (201 each: the page and its edges) and the me field above them.
    expect(res.errors!.map((e) => [e.message, e.extensions!.code, e.extensions!.cost, e.extensions!.maxCost])).toEqual([
      ['The operation costs 1207, above the limit of 1000; ask for fewer fields or smaller pages', 'OPERATION_TOO_COSTLY', 1207, 1000],
    ]);
  });

  it('refuses a request of more than 5 mutations, aliases and fragments included, on HTTP and websockets, and runs none of them', async () => {
    await openAccount(t.app, 'many');
    const buys = (n: number, prefix = '') => Array.from({ length: n }, (_, i) => `${prefix}b${i}: purchaseCreditPack(input: { packCode: "STARTER", idempotencyKey: "${prefix}k${i}" }) { purchase { id } }`).join(' ');
    const purchases = async () => Number((await t.app.one<{ n: string }>(`SELECT count(*) AS n FROM purchases WHERE account_id = 'many'`)).n);
    const refusal = [['GRAPHQL_VALIDATION_FAILED', "'Many' has more than 5 mutations; one request carries at most 5 (aliases included)"]];
    const six = await t.app.raw(`mutation Many { ${buys(6)} }`, undefined, { sub: 'many' });
    expect([six.status, six.errors!.map((e) => [e.extensions!.code, e.message])]).toEqual([400, refusal]);
    const viaFragment = await t.app.raw(`mutation Many { ${buys(3, 'x')} ...More } fragment More on Mutation { ${buys(3, 'y')} }`, undefined, { sub: 'many' });
    expect(viaFragment.errors!.map((e) => [e.extensions!.code, e.message])).toEqual(refusal);
    const client = t.app.ws({ sub: 'many' });
    const overWs = await new Promise<unknown>((resolve) => client.subscribe({ query: `mutation Many { ${buys(6, 'w')} }` }, { next: () => undefined, error: resolve, complete: () => resolve('ran') }));
    expect((overWs as { message: string; extensions: { code: string } }[]).map((e) => [e.extensions.code, e.message])).toEqual(refusal);
    await client.dispose();
    expect(await purchases()).toBe(0);
    const five = await t.app.raw(`mutation Many { ${buys(5, 'ok')} }`, undefined, { sub: 'many' });
    expect(five.errors).toBeUndefined();
    expect(await purchases()).toBe(5);
  });

  it('applies the same depth and cost limits to websocket operations', async () => {
    const client = t.app.ws({ sub: 'ws-limits' });
    const run = (query: string) =>
      new Promise<{ data?: unknown; errors?: unknown }>((resolve) => {
        let data: unknown;
        client.subscribe({ query }, {
          next: (v) => (data = v),
          error: (e) => resolve({ errors: e }),
          complete: () => resolve({ data }),
        });
      });
    const ok = (await run(DEEP)) as { data: { data: { me: { plan: { tier: { code: string } } } } } };
    expect(ok.data.data.me.plan.tier.code).toBe('FREE');
    const deep = (await run(DEEPER)) as { errors: { message: string; extensions: { code: string } }[] };
    expect(deep.errors.map((e) => [e.extensions.code, e.message])).toEqual([['GRAPHQL_VALIDATION_FAILED', "'' exceeds maximum operation depth of 3"]]);
    const costly = (await run(COSTLY)) as { errors: { message: string; extensions: { code: string } }[] };
    expect(costly.errors.map((e) => [e.extensions.code, e.message])).toEqual([
      ['OPERATION_TOO_COSTLY', 'The operation costs 1207, above the limit of 1000; ask for fewer fields or smaller pages'],
    ]);
    await client.dispose();
  });

  it('refuses batched HTTP requests', async () => {
    const token = await t.app.token('batch');
    const res = await fetch(t.app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify([{ query: '{ me { id } }' }, { query: '{ me { id } }' }]),
    });
    expect(res.status).toBe(400);
    const { errors } = (await res.json()) as { errors: { message: string; extensions: { code: string } }[] };
    expect(errors.map((e) => [e.extensions.code, e.message])).toEqual([['BAD_REQUEST', 'Operation batching disabled.']]);
  });

  it('blocks requests a browser could send cross-site (CSRF prevention)', async () => {
    // Apollo's own refusal, the same for both.
    const csrf = [[
      'BAD_REQUEST',
      "This operation has been blocked as a potential Cross-Site Request Forgery (CSRF). Please either specify a 'content-type' header (with a type that is not one of application/x-www-form-urlencoded, multipart/form-data, text/plain) or provide a non-empty value for one of the following headers: x-apollo-operation-name, apollo-require-preflight\n",
    ]];
    const refusal = async (r: Response) => ((await r.json()) as { errors: { message: string; extensions: { code: string } }[] }).errors.map((e) => [e.extensions.code, e.message]);
    const get = await fetch(`${t.app.url}?query=${encodeURIComponent('{ tiers { code } }')}`);
    expect(get.status).toBe(400);
    expect(await refusal(get)).toEqual(csrf);
    const plain = await fetch(t.app.url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ query: '{ tiers { code } }' }) });
    expect(plain.status).toBe(400);
    expect(await refusal(plain)).toEqual(csrf);
    const preflighted = await fetch(`${t.app.url}?query=${encodeURIComponent('{ tiers { code } }')}`, { headers: { 'apollo-require-preflight': '1' } });
    expect(preflighted.status).toBe(200);
  });

  it('answers /healthz and /readyz', async () => {
    const base = t.app.url.replace('/graphql', '');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('keeps subscriptions and queries separate: a subscription document is refused over HTTP POST', async () => {
    const res = await t.app.raw('subscription { balanceChanged { available } }', undefined, { sub: 'x' });
    expect(res.status).toBe(400);
    expect(res.errors).toEqual([{
      message: 'Subscriptions are served over websockets (the graphql-transport-ws protocol) on this path; HTTP answers queries and mutations',
      extensions: { code: 'BAD_REQUEST', stacktrace: expect.any(Array) }, // stack traces outside production only
    }]);
    expect(res.data ?? null).toBeNull();
  });
});

describe('in production', () => {
  let prod: TestApp;
  beforeAll(async () => {
    prod = await startTestApp({ NODE_ENV: 'production' });
  });
  afterAll(async () => {
    await prod.stop();
  });

  it('turns introspection off', async () => {
    const res = await prod.raw('{ __schema { types { name } } }');
    expect(res.status).toBe(400);
    expect(res.errors!.map((e) => [e.extensions!.code, e.message])).toEqual([
      ['GRAPHQL_VALIDATION_FAILED', 'GraphQL introspection is not allowed by Apollo Server, but the query contained __schema or __type. To enable introspection, pass introspection: true to ApolloServer in production'],
      ['GRAPHQL_VALIDATION_FAILED', 'GraphQL introspection has been disabled, but the requested query contained the field "__schema".'],
      ['GRAPHQL_VALIDATION_FAILED', 'GraphQL introspection has been disabled, but the requested query contained the field "types".'],
    ]);
  });

  it('masks internal errors: no message details, no stack trace, no SQL', async () => {
    await openAccount(prod, 'prod-user');
    await prod.audit.query('ALTER TABLE ledger_entries RENAME TO ledger_entries_gone');
    try {
      const res = await fetch(prod.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await prod.token('prod-user')}` },
        body: JSON.stringify({ query: '{ me { ledger { totalCount } } }' }),
      });
      const text = await res.text();
      expect(JSON.parse(text).errors).toEqual([
        { message: 'Internal server error', path: ['me', 'ledger'], locations: [{ line: 1, column: 8 }], extensions: { code: 'INTERNAL_SERVER_ERROR' } },
      ]);
      expect(text).not.toMatch(/ledger_entries|relation|stacktrace|QueryFailed|SELECT/i);
    } finally {
      await prod.audit.query('ALTER TABLE ledger_entries_gone RENAME TO ledger_entries');
    }
  });

  it('keeps intended errors and their codes, without stack traces', async () => {
    const res = await prod.gql(MeDocument, {}, null);
    expect(res.errors).toEqual([
      { message: 'A valid bearer token is required', path: ['me'], locations: [{ line: 2, column: 3 }], extensions: { code: 'UNAUTHENTICATED' } },
    ]);
    const forbidden = await prod.raw('{ account(id: "x") { id } }', undefined, { sub: 'u', role: Role.USER });
    expect(forbidden.errors!.map((e) => [e.message, e.extensions])).toEqual([['This operation needs the role admin', { code: 'FORBIDDEN' }]]);
  });

  it('keeps the subscription transport working', async () => {
    await openAccount(prod, 'prod-ws');
    const sub = subscribe(prod.ws({ sub: 'prod-ws' }), BalanceChangedDocument);
    await untilLive(sub, () => prod.gql(SetLowCreditThresholdDocument, { threshold: 5 }, { sub: 'prod-ws' }));
    await prod.gql(SetLowCreditThresholdDocument, { threshold: 40 }, { sub: 'prod-ws' });
    expect((await sub.waitFor(1))[0].balanceChanged).toEqual({ available: await signupCredits(prod), lowCreditThreshold: 40, isLow: true });
    await sub.dispose();
  });
});
