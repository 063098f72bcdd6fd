import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema, getNamedType, getNullableType, isEnumType, isInputObjectType, isListType, isNonNullType, Kind, parse, typeFromAST, type GraphQLInputType } from 'graphql';
import { Role } from '../src/common/auth/role.enum';
import { operationCost, TOTAL_COUNT_COST } from '../src/common/limits/operation-limits';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../src/common/relay/connection.args';
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

  it('a connection of 100 edges with totalCount is refused only when the cost passes the limit', async () => {
    await openAccount(t.app, 'count-cost');
    // Each page: ledger 1 + totalCount 100 and pageInfo 3 once + 100 edges x (edges 1 + cursor 1) = 304
    // (pageInfo and totalCount were multiplied by the page size: 601). Three pages, a fourth of `first` edges without a count, me 1.
    const pages = (first: number) =>
      `{ me { ${[0, 1, 2].map((i) => `l${i}: ledger(first: 100) { totalCount pageInfo { hasNextPage endCursor } edges { cursor } }`).join(' ')} more: ledger(first: ${first}) { edges { cursor } } } }`;
    const atLimit = await t.app.raw<{ me: { l2: { totalCount: number } } }>(pages(43), undefined, { sub: 'count-cost' }); // 1 + 3 x 304 + 1 + 86 = 1000
    expect([atLimit.errors, atLimit.data!.me.l2.totalCount]).toEqual([undefined, 1]);
    const over = await t.app.raw(pages(44), undefined, { sub: 'count-cost' });
    expect([over.status, over.errors!.map((e) => [e.extensions!.code, e.extensions!.cost, e.message])]).toEqual([
      400,
      [['OPERATION_TOO_COSTLY', 1002, 'The operation costs 1002, above the limit of 1000; ask for fewer fields or smaller pages']],
    ]);
  });

  it('refuses aliased totalCounts by their number, whatever the page size, on HTTP and websockets', async () => {
    await openAccount(t.app, 'count-aliases');
    const counts = (n: number) => `{ me { ledger(first: 1) { ${Array.from({ length: n }, (_, i) => `c${i}: totalCount`).join(' ')} } } }`;
    const nine = await t.app.raw<{ me: { ledger: Record<string, number> } }>(counts(9), undefined, { sub: 'count-aliases' }); // 2 + 900
    expect([nine.errors, nine.data!.me.ledger.c8]).toEqual([undefined, 1]);
    const refusal = [['OPERATION_TOO_COSTLY', 'The operation costs 1002, above the limit of 1000; ask for fewer fields or smaller pages']];
    const ten = await t.app.raw(counts(10), undefined, { sub: 'count-aliases' });
    expect([ten.status, ten.errors!.map((e) => [e.extensions!.code, e.message])]).toEqual([400, refusal]);
    const client = t.app.ws({ sub: 'count-aliases' });
    const overWs = await new Promise<unknown>((resolve) => client.subscribe({ query: counts(10) }, { next: () => undefined, error: resolve, complete: () => resolve('ran') }));
    expect((overWs as { message: string; extensions: { code: string } }[]).map((e) => [e.extensions.code, e.message])).toEqual(refusal);
    await client.dispose();
  });

  it('costs a document whose pages @include leaves out for each request, on HTTP and websockets: sent once without its pages, it is not waved through with them', async () => {
    const query = `query($on: Boolean!) { me { ${Array.from({ length: 6 }, (_, i) => `l${i}: ledger(first: 100) @include(if: $on) { edges { cursor } }`).join(' ')} } }`;
    const refusal = [['OPERATION_TOO_COSTLY', 'The operation costs 1207, above the limit of 1000; ask for fewer fields or smaller pages']];
    const off = await t.app.raw(query, { on: false }, { sub: 'include-cost' });
    expect(off.errors).toBeUndefined();
    const on = await t.app.raw(query, { on: true }, { sub: 'include-cost' });
    expect([on.status, on.errors!.map((e) => [e.extensions!.code, e.message])]).toEqual([400, refusal]);
    const client = t.app.ws({ sub: 'include-cost' });
    const run = (variables: Record<string, unknown>) =>
      new Promise<unknown>((resolve) => client.subscribe({ query, variables }, { next: () => undefined, error: resolve, complete: () => resolve('ran') }));
    expect(await run({ on: false })).toBe('ran');
    expect(((await run({ on: true })) as { message: string; extensions: { code: string } }[]).map((e) => [e.extensions.code, e.message])).toEqual(refusal);
    await client.dispose();
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

describe('operation cost', () => {
  const schema = buildSchema(readFileSync(SCHEMA_FILE, 'utf8')); // the app's schema (the first hygiene test keeps them equal)
  const cost = (query: string, variables?: Record<string, unknown>) => operationCost(schema, parse(query), variables);
  const ledger = (args: string, selection: string) => cost(`{ me { ledger${args} { ${selection} } } }`);

  it('prices totalCount at 100 once per connection, not per edge', () => {
    expect(TOTAL_COUNT_COST).toBe(100);
    // me 1 + ledger 1 + totalCount 100 + 20 edges x (edges 1 + node 1 + id 1)
    expect(ledger('(first: 20)', 'totalCount edges { node { id } }')).toBe(162);
    expect(ledger('', 'totalCount edges { node { id } }')).toBe(2 + 100 + DEFAULT_PAGE_SIZE * 3);
    for (const first of [0, 1, 20, MAX_PAGE_SIZE]) {
      expect(ledger(`(first: ${first})`, 'totalCount edges { node { id } }') - ledger(`(first: ${first})`, 'edges { node { id } }')).toBe(TOTAL_COUNT_COST);
    }
    expect(ledger('(first: 100)', 'totalCount')).toBe(102);
  });

  it('prices pageInfo once per connection, not per edge', () => {
    expect(ledger('(first: 100)', 'totalCount pageInfo { hasNextPage endCursor } edges { node { id } }')).toBe(2 + 100 + 3 + 300);
    expect(ledger('(first: 1)', 'pageInfo { hasNextPage endCursor } edges { node { id } }')).toBe(2 + 3 + 3);
    // the page sizes still multiply what each edge selects: 6 aliased pages of 100 edges { cursor }
    expect(cost(`{ me { ${Array.from({ length: 6 }, (_, i) => `l${i}: ledger(first: 100) { edges { cursor } pageInfo { hasNextPage } }`).join(' ')} } }`)).toBe(1 + 6 * (1 + 200 + 2));
  });

  it('two aliased totalCounts cost two counts; one name selected twice is one count', () => {
    expect(ledger('', 'a: totalCount b: totalCount')).toBe(2 + 2 * TOTAL_COUNT_COST);
    expect(ledger('', 'totalCount totalCount')).toBe(2 + TOTAL_COUNT_COST);
    expect(ledger('', 'a: totalCount a: totalCount totalCount')).toBe(2 + 2 * TOTAL_COUNT_COST);
    // on two connections: a count each
    expect(cost('{ me { ledger { totalCount } jobs { totalCount } } }')).toBe(1 + 2 * (1 + TOTAL_COUNT_COST));
  });

  it('a totalCount in a fragment costs the same', () => {
    const inline = ledger('(first: 20)', 'totalCount edges { node { id } }');
    expect(cost('{ me { ledger(first: 20) { ...Page } } } fragment Page on LedgerEntryConnection { totalCount edges { ...Edge } } fragment Edge on LedgerEntryEdge { node { id } }')).toBe(inline);
    expect(cost('{ me { ledger(first: 20) { ... on LedgerEntryConnection { totalCount } ... { edges { node { id } } } } } }')).toBe(inline);
    expect(cost('{ me { ...Ledger } } fragment Ledger on Account { ledger(first: 20) { ...Count edges { node { id } } } } fragment Count on LedgerEntryConnection { totalCount }')).toBe(inline);
    // merged with the same name selected inline: still one count; under an alias, a count of its own
    expect(cost('{ me { ledger { totalCount ...C } } } fragment C on LedgerEntryConnection { totalCount }')).toBe(2 + TOTAL_COUNT_COST);
    expect(cost('{ me { ledger { totalCount ...C } } } fragment C on LedgerEntryConnection { n: totalCount }')).toBe(2 + 2 * TOTAL_COUNT_COST);
  });

  it('counts a totalCount once per edge of the connection it is nested under', () => {
    const nested = buildSchema(`
      type Query { things(first: Int): ThingConnection! }
      type ThingConnection { edges: [ThingEdge!]! pageInfo: PageInfo! totalCount: Int! }
      type ThingEdge { cursor: String! node: Thing! }
      type Thing { id: ID! children(first: Int): ThingConnection! }
      type PageInfo { hasNextPage: Boolean! }
    `);
    const of = (inner: string) => operationCost(nested, parse(`{ things(first: 20) { totalCount edges { node { children(first: 5) { ${inner} } } } } }`), undefined);
    // children: 1 + 5 x (edges 1 + node 1 + id 1) = 16 per outer edge, plus 100 for its totalCount
    expect(of('edges { node { id } }')).toBe(1 + 100 + 20 * (1 + 1 + 16));
    expect(of('totalCount edges { node { id } }') - of('edges { node { id } }')).toBe(20 * TOTAL_COUNT_COST);
  });

  it('leaves out a totalCount that @skip or @include leave out, for each request\'s variables (the cost is not cached across them)', () => {
    const skipped = 'query($s: Boolean!) { me { ledger { totalCount @skip(if: $s) } } }';
    expect(cost(skipped, { s: true })).toBe(2);
    expect(cost(skipped, { s: false })).toBe(2 + TOTAL_COUNT_COST);
    expect(cost('{ me { ledger { ...C @include(if: false) } } } fragment C on LedgerEntryConnection { totalCount }')).toBe(2);
    // the same parsed document (as Apollo hands out for the same text): skipped pages first, then all of them
    const pages = parse(`query($on: Boolean!) { me { ${[0, 1, 2, 3, 4].map((i) => `l${i}: ledger(first: 100) @include(if: $on) { edges { node { id kind amount } } }`).join(' ')} } }`);
    expect(operationCost(schema, pages, { on: false })).toBe(1);
    expect(operationCost(schema, pages, { on: true })).toBe(1 + 5 * (1 + 100 * 5));
  });

  it("keeps the client kit's and the tests' documents under the default limit of 5000 at the largest page size", () => {
    const sample = (type: GraphQLInputType): unknown => {
      if (!isNonNullType(type)) return undefined;
      const inner = getNullableType(type);
      if (isListType(inner)) return [];
      const named = getNamedType(inner);
      if (isEnumType(named)) return named.getValues()[0].value;
      if (isInputObjectType(named)) return Object.fromEntries(Object.values(named.getFields()).map((f) => [f.name, sample(f.type)]).filter(([, v]) => v !== undefined));
      return { Int: 1, Float: 1, Boolean: true }[named.name] ?? 'x';
    };
    const root = path.resolve(__dirname, '..');
    const costs: Record<string, number> = {};
    for (const dir of ['client/documents', 'test/graphql']) {
      const files = readdirSync(path.join(root, dir)).filter((f) => f.endsWith('.graphql'));
      const document = parse(files.map((f) => readFileSync(path.join(root, dir, f), 'utf8')).join('\n'));
      for (const d of document.definitions) {
        if (d.kind !== Kind.OPERATION_DEFINITION) continue;
        const variables = Object.fromEntries(
          (d.variableDefinitions ?? []).map((v) => [v.variable.name.value, v.variable.name.value === 'first' ? MAX_PAGE_SIZE : sample(typeFromAST(schema, v.type as never) as GraphQLInputType)]),
        );
        costs[`${dir} ${d.name!.value}`] = operationCost(schema, document, variables, d.name!.value);
      }
    }
    expect(Object.keys(costs).length).toBeGreaterThan(30);
    expect(Object.entries(costs).filter(([, c]) => c > 5000)).toEqual([]);
    expect(costs['client/documents Jobs']).toBeGreaterThan(TOTAL_COUNT_COST); // the connections are costed
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
