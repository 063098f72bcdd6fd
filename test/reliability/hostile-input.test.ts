/**
 * Hostile input against a production-configured server (NODE_ENV=production): every argument
 * of every field in schema/schema.graphql (walked from the SDL, so new arguments are covered
 * without touching this file) is fed generated valid and hostile values and documents, over
 * HTTP and websockets. Every answer must be clean — no 5xx, no stack trace, no SQL or table
 * names, no internal message — and no refusal may change the ledger. Depth, alias, repeated
 * field, cost, token and batch attacks are refused on both transports with their exact codes,
 * and normal requests keep their p99 (within 2x, 20 ms floor) while attackers send 40 of them a
 * second; the server's CPU per refused attack is printed.
 *
 * Short form in `npm test` (fixed seed); long form with STRESS=1. Replay: SEED=<n>.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import fc from 'fast-check';
import { getNamedType, getNullableType, isEnumType, isInputObjectType, isListType, isNonNullType, type GraphQLInputType, type GraphQLSchema } from 'graphql';
import { createClient, type Client as WsClient } from 'graphql-ws';
import WebSocket from 'ws';
import { Role } from '../../src/common/auth/role.enum';
import { scale, seedFor, STRESS } from '../helpers/scale';
import { useTestApp } from '../helpers/test-app';
import {
  argumentSites,
  documentFor,
  hostileValue,
  leafPaths,
  loadSchema,
  rootFields,
  setAt,
  stringsIn,
  validValue,
  type ArgSite,
  type ValueContext,
} from './schema-walk';
import { findingsOf, intendedRole, LEAK, MONEY_STATE_SQL, refusedIn, tableNamePattern } from './hostile-rules';

const t = useTestApp({ NODE_ENV: 'production' });
const schema: GraphQLSchema = loadSchema();

const USER = 'hostile-a';
const OTHER = 'hostile-b';
const PROBE = 'hostile-probe';
const ADMIN = 'hostile-admin';
const WORKER = 'hostile-worker';

type As = 'user' | 'other' | 'admin' | 'worker' | 'none' | 'bad-token';
const SUBS: Record<Exclude<As, 'none' | 'bad-token'>, { sub: string; role: Role }> = {
  user: { sub: USER, role: Role.USER },
  other: { sub: OTHER, role: Role.USER },
  admin: { sub: ADMIN, role: Role.ADMIN },
  worker: { sub: WORKER, role: Role.WORKER },
};

let tableNames: RegExp;

interface Outcome {
  transport: 'http' | 'ws';
  status: number;
  text: string;
  body?: { data?: Record<string, unknown> | null; errors?: { message: string; extensions?: Record<string, unknown> }[] };
  closeCode?: number;
  /** The operation ran (no parse/validation/variable refusal). */
  executed: boolean;
  /** Refused: an error, a null root, or userErrors. */
  refused: boolean;
}

// ------------------------------------------------------------------------------------------
// Transport

async function headersFor(as: As): Promise<Record<string, string>> {
  const h: Record<string, string> = { 'content-type': 'application/json' };
  if (as === 'bad-token') h.authorization = 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bad';
  else if (as !== 'none') h.authorization = `Bearer ${await t.app.token(SUBS[as].sub, SUBS[as].role)}`;
  return h;
}

/** Kept-alive connections the server had closed when the client reused them (retried once, counted). */
let resets = 0;

async function http(query: string, variables: Record<string, unknown> | undefined, as: As, rawBody?: string, extraHeaders: Record<string, string> = {}): Promise<Outcome> {
  const send = async () => fetch(t.app.url, { method: 'POST', headers: { ...(await headersFor(as)), ...extraHeaders }, body: rawBody ?? JSON.stringify({ query, variables }) });
  const res = await send().catch(async (e) => {
    if (!/ECONNRESET/.test(String((e as { cause?: unknown }).cause))) throw e;
    resets++;
    return send();
  });
  const text = await res.text();
  let body: Outcome['body'];
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const executed = !!body && "data" in body;
  return { transport: 'http', status: res.status, text, body, executed, refused: !body || refusedIn(body.data, body.errors) };
}

const wsClients = new Map<As, { client: WsClient; closed?: number }>();
function wsFor(as: As): { client: WsClient; closed?: number } {
  let entry = wsClients.get(as);
  if (!entry || entry.closed !== undefined) {
    const holder: { client: WsClient; closed?: number } = {} as never;
    holder.client = createClient({
      url: t.app.server.wsUrl,
      webSocketImpl: WebSocket,
      lazy: true,
      retryAttempts: 0,
      connectionParams: async () => {
        if (as === 'none') return {};
        if (as === 'bad-token') return { authorization: 'Bearer nope' };
        return { authorization: `Bearer ${await t.app.token(SUBS[as].sub, SUBS[as].role)}` };
      },
      on: { closed: (e) => (holder.closed = (e as { code: number }).code) },
    });
    entry = holder;
    wsClients.set(as, entry);
  }
  return entry;
}

/** Runs an operation over graphql-ws; a subscription still open after `openMs` counts as accepted. */
async function ws(query: string, variables: Record<string, unknown> | undefined, as: As, openMs = /^\s*subscription\b/.test(query) ? 150 : 5000): Promise<Outcome> {
  const entry = wsFor(as);
  return new Promise<Outcome>((resolve) => {
    const results: unknown[] = [];
    let done = false;
    const finish = (o: Omit<Outcome, 'transport'>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stop();
      resolve({ transport: 'ws', ...o });
    };
    const stop = entry.client.subscribe(
      { query, variables },
      {
        next: (v) => results.push(v),
        error: (e) => {
          const closeCode = (e as { code?: number })?.code;
          const errors = Array.isArray(e) ? (e as Outcome['body'] & object[]) : undefined;
          const text = JSON.stringify(Array.isArray(e) ? e : { code: closeCode, reason: (e as { reason?: string })?.reason ?? String(e) });
          finish({ status: 0, text, body: errors ? { errors: errors as never } : undefined, closeCode, executed: false, refused: true });
        },
        complete: () => {
          const r = (results[0] ?? {}) as NonNullable<Outcome['body']>;
          finish({ status: 0, text: JSON.stringify(results), body: r, executed: true, refused: refusedIn(r.data, r.errors) });
        },
      },
    );
    const timer = setTimeout(() => finish({ status: 0, text: JSON.stringify(results), executed: true, refused: false }), openMs);
  });
}

// ------------------------------------------------------------------------------------------
// Checks

const violations: string[] = [];
let tried = 0;

function inspect(label: string, o: Outcome, sent: unknown[], payloadBytes = 0): void {
  tried++;
  const reasons = findingsOf(o, stringsIn(sent), tableNames, payloadBytes);
  if (reasons.length) violations.push(`${label} [${o.transport}]: ${reasons.join('; ')} :: ${process.env.FULL_TEXT ? o.text : o.text.slice(0, 240)}`);
}

interface Digest {
  ledger: string;
}

/** The money state: ledger entries, lots, balances, jobs and purchases. */
async function digest(): Promise<Digest> {
  const { rows } = await t.app.audit.query(MONEY_STATE_SQL);
  return { ledger: rows[0].d };
}

/** Sends one case and checks the answer and, on a refusal, that the money state did not move. */
async function attempt(label: string, transport: 'http' | 'ws', query: string, variables: Record<string, unknown> | undefined, as: As): Promise<Outcome> {
  const before = await digest();
  const o = transport === 'http' ? await http(query, variables, as) : await ws(query, variables, as);
  const bytes = Buffer.byteLength(JSON.stringify({ query, variables }));
  inspect(label, o, [query, variables], bytes);
  if (o.refused) {
    const after = await digest();
    if (after.ledger !== before.ledger) violations.push(`${label} [${transport}]: a refusal changed the ledger :: ${o.text.slice(0, 200)}`);
  }
  return o;
}

// ------------------------------------------------------------------------------------------
// Fixtures: objects of both users, so ids of real (own and foreign) objects are in the mix.

const ids: string[] = [];
const own: Record<string, string> = {};
let priceClasses: Record<string, unknown>[] = [];
let largeSizePixels = 0;

async function must<T = Record<string, unknown>>(query: string, variables: Record<string, unknown> | undefined, as: As): Promise<T> {
  const o = await http(query, variables, as);
  if (!o.body?.data || o.body.errors) throw new Error(`fixture failed: ${o.text}`);
  return o.body.data as T;
}

const START = `mutation($i: StartGenerationInput!) { startGeneration(input: $i) { job { id } userErrors { code } } }`;
const IMAGE = { type: 'IMAGE', imageQuality: 'STANDARD' };

beforeAll(async () => {
  const { rows } = await t.app.audit.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE '%\\_%'`);
  tableNames = tableNamePattern(rows.map((r) => r.tablename));
  for (const as of ['user', 'other', 'admin', 'worker'] as const) {
    await must(`{ quote(settings: { type: IMAGE, imageQuality: STANDARD }) { id } }`, undefined, as); // opens the caller's account
  }
  await t.app.raw('{ me { id } }', undefined, { sub: PROBE });
  for (const as of ['user', 'other'] as const) {
    for (let i = 0; i < 3; i++) {
      const d = await must<{ startGeneration: { job: { id: string } } }>(START, { i: { settings: IMAGE, prompt: `fixture ${i}` } }, as);
      ids.push(d.startGeneration.job.id);
      own[`${as}Job${i}`] = d.startGeneration.job.id;
    }
    const p = await must<{ purchaseCreditPack: { purchase: { id: string } } }>(
      `mutation { purchaseCreditPack(input: { packCode: "STARTER" }) { purchase { id } } }`,
      undefined,
      as,
    );
    own[`${as}Purchase`] = p.purchaseCreditPack.purchase.id;
    const q = await must<{ quote: { id: string } }>(`{ quote(settings: { type: IMAGE, imageQuality: STANDARD }) { id } }`, undefined, as);
    own[`${as}Quote`] = q.quote.id;
    const n = await must<{ me: { notifications: { edges: { node: { id: string } }[] } } }>(`{ me { notifications { edges { node { id } } } } }`, undefined, as);
    own[`${as}Notification`] = n.me.notifications.edges[0]?.node.id ?? randomUUID();
  }
  const claimed = await must<{ claimGenerationJob: { id: string } }>(`mutation { claimGenerationJob { id } }`, undefined, 'worker');
  own.running = claimed.claimGenerationJob.id;
  const r = await must<{ requestRefund: { refundRequest: { id: string } | null } }>(
    `mutation($p: ID!) { requestRefund(input: { purchaseId: $p }) { refundRequest { id } } }`,
    { p: own.otherPurchase },
    'other',
  );
  own.refundRequest = r.requestRefund.refundRequest?.id ?? randomUUID();
  const book = await must<{ priceBook: { largeSizePixels: number; classes: Record<string, unknown>[] } }>(
    `{ priceBook { largeSizePixels classes { costClass base perExtraSecond cap largeSize premiumModel premiumQuality } } }`,
    undefined,
    'user',
  );
  largeSizePixels = book.priceBook.largeSizePixels;
  priceClasses = book.priceBook.classes;
  ids.push(...Object.values(own), USER, OTHER, ADMIN, WORKER);
});

afterAll(async () => {
  await Promise.all([...wsClients.values()].map((e) => e.client.dispose()));
});

afterEach(() => {
  if (violations.length) {
    const shown = violations.splice(0);
    // One example per field and kind of finding, then the total.
    const byKind = new Map<string, string>();
    for (const v of shown) byKind.set(`${v.split(' ')[0]} ${v.split(']: ')[1]?.split(' :: ')[0]}`, v);
    throw new Error(`${shown.length} findings, ${byKind.size} kinds:\n  ${[...byKind.values()].slice(0, 60).join('\n  ')}`);
  }
});

// ------------------------------------------------------------------------------------------
// Which role a field is meant for, read from its description ("Admin: …", "Worker: …").

/** Domain-meaningful starting arguments where we know them; any other field starts from generated values. */
function baseline(site: ArgSite, ctx: ValueContext, seed: number): Record<string, unknown> {
  const known: Record<string, () => Record<string, unknown>> = {
    'Query.quote': () => ({ settings: IMAGE }),
    'Query.planChangePreview': () => ({ tier: 'CREATOR', interval: 'MONTHLY' }),
    'Query.job': () => ({ id: own.userJob0 }),
    'Query.account': () => ({ id: USER }),
    'Mutation.startGeneration': () => ({ input: { settings: IMAGE, prompt: 'a lighthouse at dusk' } }),
    'Mutation.cancelGeneration': () => ({ jobId: own.userJob1 }),
    'Mutation.purchaseCreditPack': () => ({ input: { packCode: 'STARTER' } }),
    'Mutation.changePlan': () => ({ input: { tier: 'CREATOR', interval: 'MONTHLY' } }),
    'Mutation.requestRefund': () => ({ input: { purchaseId: own.userPurchase } }),
    'Mutation.setLowCreditThreshold': () => ({ threshold: 10 }),
    'Mutation.markNotificationsRead': () => ({ ids: [own.userNotification] }),
    'Mutation.adjustCredits': () => ({ input: { accountId: USER, amount: 5, reason: 'fuzz' } }),
    'Mutation.reviewRefundRequest': () => ({ input: { id: own.refundRequest, approve: false } }),
    'Mutation.reportGenerationProgress': () => ({ jobId: own.running, progress: 10 }),
    'Mutation.completeGenerationJob': () => ({ jobId: own.running, resultUrls: ['https://cdn.example/1.png'] }),
    'Mutation.failGenerationJob': () => ({ jobId: own.running, reason: 'fuzz' }),
    'Mutation.advanceTestClock': () => ({ hours: 1 }),
    'Mutation.publishPriceBook': () => ({ input: { largeSizePixels, classes: priceClasses } }),
    'Subscription.jobUpdated': () => ({ jobId: own.userJob0 }),
  };
  if (known[site.id]) return known[site.id]();
  if (site.field.name === 'ledger' || site.field.name.endsWith('s')) {
    if (site.args.every((a) => ['first', 'after', 'status', 'unreadOnly'].includes(a.name))) return { first: 5 };
  }
  const [generated] = fc.sample(
    fc.record(Object.fromEntries(site.args.map((a) => [a.name, validValue(a.type, ctx)]))),
    { seed, numRuns: 1 },
  );
  return generated as Record<string, unknown>;
}

/** Values every argument position of this type gets in every run (then generated ones on top). */
function coreHostile(type: GraphQLInputType): unknown[] {
  const nullable = getNullableType(type);
  const named = getNamedType(type);
  if (isListType(nullable)) return [[], 'not a list', Array.from({ length: 1500 }, () => randomUUID()), [null]];
  if (isEnumType(named)) return ['unknown', named.getValues()[0].name.toLowerCase(), 0];
  if (isInputObjectType(named)) return [{}, { unknownField: 1 }, 'x', []];
  switch (named.name) {
    case 'Int':
      return [2 ** 31, -(2 ** 31) - 1, -1, 0, 1.5, 1e308, '1'];
    case 'Float':
      return [1e308, -1, 0, 'NaN', '1'];
    case 'Boolean':
      return ['true', 0, null];
    case 'ID':
      return ['a\u0000b', '\ud800', 'D'.repeat(20_000), '', 'not-an-id', own.otherJob0, own.otherPurchase, OTHER, 12];
    default:
      return ['a\u0000b', '\ud800x', 'C'.repeat(20_000), '', '\u202eمرحبا 👩‍👩‍👧‍👦', 7];
  }
}

/** GraphQL literal text for inline (document-level) hostile values. */
const HOSTILE_LITERALS: Record<string, string[]> = {
  Int: ['99999999999999999999', '2147483648', '-2147483649', '1.5', '1e400', '"1"', 'null', '[1]', '{ a: 1 }', 'NaN', 'true'],
  Float: ['1e400', '-1e400', '"1"', 'NaN', '0x10', 'null', '[1.5]'],
  String: ['"\\u0000"', '"\\uD800"', '"""block \\""" string"""', '1', 'null', 'ENUM_VALUE', '["a"]', '{ a: "b" }', `"${'x'.repeat(3000)}"`],
  ID: ['"\\u0000"', '1', '-1', '99999999999999999999', '1.5', 'null', '["a"]', '{ id: 1 }', '$undeclared'],
  Boolean: ['"true"', '1', 'null', 'TRUE'],
};

// ------------------------------------------------------------------------------------------

describe('hostile input (NODE_ENV=production)', () => {
  it('answers every argument of every field, fed generated valid and hostile values, cleanly and without a ledger change on any refusal', async () => {
    const seed = seedFor('hostile-input/arguments', 60606);
    const perLeaf = scale(3, 24);
    const perSite = scale(6, 80);
    const ctx: ValueContext = { ids };
    const sites = argumentSites(schema);
    const bare = rootFields(schema)
      .filter((f) => f.field.args.length === 0)
      .map((f) => ({ id: f.id, operation: f.operation, via: [] as string[], field: f.field, args: f.field.args }));
    const unreachable = sites.filter((s) => !s.via).map((s) => s.id);
    expect(unreachable).toEqual([]);

    const coverage = new Map<string, { cases: number; executed: number; refused: number }>();
    const leafHits = new Map<string, number>();
    const note = (id: string, o: Outcome) => {
      const c = coverage.get(id) ?? { cases: 0, executed: 0, refused: 0 };
      c.cases++;
      if (o.executed) c.executed++;
      if (o.refused) c.refused++;
      coverage.set(id, c);
    };
    const started = Date.now();
    let n = 0;
    const rng = fc.sample(fc.integer({ min: 0, max: 2 ** 30 }), { seed, numRuns: 1 })[0];
    const nextSeed = () => rng + n++;

    for (const site of [...sites, ...bare]) {
      const role = intendedRole(site, site.id);
      const transport = site.operation === 'subscription' ? 'ws' : 'http';
      const doc = documentFor(site);
      const base = site.args.length ? baseline(site, ctx, nextSeed()) : {};
      const run = async (label: string, vars: Record<string, unknown> | undefined, as: As = role, query = doc) => note(site.id, await attempt(`${site.id} ${label}`, transport, query, vars, as));

      // The baseline itself, then as every other kind of caller.
      await run('baseline', base);
      for (const as of ['none', 'bad-token', 'other', ...(role === 'user' ? ['admin', 'worker'] : ['user'])] as As[]) await run(`as ${as}`, base, as);

      // One leaf at a time: hostile values, and the leaf left out.
      for (const leaf of leafPaths(site.args)) {
        const key = `${site.id}:${leaf.path.join('.')}`;
        for (const v of [...coreHostile(leaf.type), ...fc.sample(hostileValue(leaf.type, ctx), { seed: nextSeed(), numRuns: perLeaf })]) {
          leafHits.set(key, (leafHits.get(key) ?? 0) + 1);
          await run(`${leaf.path.join('.')}=${JSON.stringify(v)?.slice(0, 60)}`, setAt(base, leaf.path, v));
        }
        await run(`${leaf.path.join('.')} left out`, setAt(base, leaf.path, undefined));
      }

      // Whole argument sets: generated valid (type-correct) and hostile ones.
      if (site.args.length) {
        const whole = fc.record(
          Object.fromEntries(site.args.map((a) => [a.name, fc.oneof(validValue(a.type, ctx), hostileValue(a.type, ctx))])),
          { requiredKeys: [] },
        );
        for (const vars of fc.sample(whole, { seed: nextSeed(), numRuns: perSite })) await run(`generated ${JSON.stringify(vars).slice(0, 80)}`, vars as Record<string, unknown>);
      }

      // Documents: a missing required argument, an unknown argument, an unknown field, wrong variable types, inline hostile literals.
      for (const a of site.args.filter((x) => isNonNullType(x.type))) await run(`missing ${a.name}`, base, role, documentFor(site, { omit: [a.name] }));
      await run('unknown argument', base, role, documentFor(site, { extraArgs: 'bogusArgument: 1' }));
      await run('unknown field', base, role, documentFor(site, { extraSelection: 'bogusField' }));
      await run('wrong variable types', base, role, documentFor(site).replace(/\$(\w+): [\w![\]]+/g, '$$$1: String'));
      for (const a of site.args) {
        const named = getNamedType(a.type).name;
        const literals = HOSTILE_LITERALS[named] ?? ['1', '"x"', 'null', '{ unknownField: 1 }', '[]'];
        for (const lit of literals.slice(0, scale(4, literals.length))) await run(`${a.name} literal ${lit.slice(0, 30)}`, base, role, documentFor(site, { literal: { [a.name]: lit } }));
      }
    }

    const seconds = (Date.now() - started) / 1000;
    process.stdout.write(`[hostile-input/arguments] ${tried} inputs tried on ${coverage.size} fields (${leafHits.size} argument positions) in ${seconds.toFixed(1)} s\n`);

    // Every field with arguments and every root field was exercised; each ran at least once and was refused at least once.
    const expected = [...sites, ...bare].map((s) => s.id).sort();
    expect([...coverage.keys()].sort()).toEqual(expected);
    const neverRan = [...coverage].filter(([, c]) => c.executed === 0).map(([id]) => id);
    const neverRefused = [...coverage].filter(([, c]) => c.refused === 0).map(([id]) => id);
    process.stdout.write(`never ran: ${neverRan}; never refused: ${neverRefused}\n`);
    expect({ neverRan, neverRefused }).toEqual({ neverRan: [], neverRefused: [] });
    // Every argument position (arguments and the fields of input objects) got hostile values.
    const positions = sites.flatMap((s) => leafPaths(s.args).map((l) => `${s.id}:${l.path.join('.')}`)).sort();
    expect([...leafHits.keys()].sort()).toEqual(positions);
    expect(Math.min(...leafHits.values())).toBeGreaterThanOrEqual(perLeaf + 2);
  }, scale(120_000, 900_000));

  it('refuses malformed documents and bodies on HTTP and websockets with a coded error and nothing else', async () => {
    const before = await digest();
    const start = tried;
    const deep = (n: number) => `{ me ${'{ a '.repeat(n)}${'}'.repeat(n + 1)}`;
    const docs: [string, string, Record<string, unknown>?][] = [
      ['a 10000-character operation name', `query ${'N'.repeat(10_000)} { me { id } }`],
      ['unknown fragment', '{ me { ...Nope } }'],
      ['fragment cycle', 'query { me { ...A } } fragment A on Account { id ...B } fragment B on Account { ...A }'],
      ['self-spreading fragment', 'query { me { ...A } } fragment A on Account { ...A }'],
      ['nested 40 deep', deep(40)],
      ['nested 3000 deep', deep(3000)],
      ['nested 20000 deep', deep(20_000)],
      ['15000 tokens', `{ me { id ${'__typename '.repeat(15_000)}} }`],
      ['two operations, no name', 'query A { me { id } } query B { tiers { code } }'],
      ['empty document', ''],
      ['only a comment', '# nothing'],
      ['raw NUL in the source', '{ me { id } }\u0000'],
      ['lone surrogate in the source', '{ me { id \ud800 } }'],
      ['byte order mark', '\ufeff{ me { id } }'],
      ['unknown directive', '{ me @bogus { id } }'],
      ['skip with a string', '{ me @skip(if: "yes") { id } }'],
      ['duplicate variables', 'query($a: Int, $a: Int) { me { ledger(first: $a) { totalCount } } }', { a: 1 }],
      ['unused variable', 'query($a: Int) { me { id } }', { a: 'x' }],
      ['hostile default value', 'query($a: Int = 99999999999) { me { ledger(first: $a) { totalCount } } }'],
      ['variable of an unknown type', 'query($a: Money) { me { id } }', { a: 1 }],
      ['a 200 KB string literal', `{ quote(settings: { type: IMAGE, imageQuality: STANDARD, model: "${'m'.repeat(40_000)}" }) { id } }`],
      ['introspection of a type', '{ __type(name: "Account") { fields { name } } }'],
      ['subscription with two root fields', 'subscription { balanceChanged { available } creditWarning { level } }'],
      ['mutation selecting nothing', 'mutation { cancelPlan }'],
      ['__proto__ variables', 'query($a: Int) { me { ledger(first: $a) { totalCount } } }', JSON.parse('{"__proto__": {"a": 1}, "constructor": {"prototype": {}}}')],
    ];
    for (const [label, query, variables] of docs) {
      for (const transport of ['http', 'ws'] as const) {
        const o = await (transport === 'http' ? http(query, variables, 'user') : ws(query, variables, 'user')).catch((e) => {
          throw new Error(`document: ${label} [${transport}]: ${String((e as { cause?: unknown }).cause ?? e)}`);
        });
        inspect(`document: ${label}`, o, [query, variables], Buffer.byteLength(JSON.stringify({ query, variables })));
        if (!['unused variable', 'byte order mark', 'a 10000-character operation name', '__proto__ variables'].includes(label)) expect(`${label} [${transport}] refused: ${o.refused}`).toBe(`${label} [${transport}] refused: true`);
      }
    }
    const bodies: [string, string, Record<string, string>?][] = [
      ['truncated JSON', '{"query": '],
      ['not JSON', 'query { me { id } }'],
      ['JSON null', 'null'],
      ['JSON number', '123'],
      ['JSON string', '"{ me { id } }"'],
      ['empty array (batch)', '[]'],
      ['query is a number', '{"query": 1}'],
      ['query is an object', '{"query": {"kind": "Document"}}'],
      ['variables is a string', '{"query": "{ me { id } }", "variables": "{}"}'],
      ['variables is an array', '{"query": "{ me { id } }", "variables": [1]}'],
      ['extensions junk', '{"query": "{ me { id } }", "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "x"}}}'],
      ['operationName is an object', '{"query": "{ me { id } }", "operationName": {}}'],
      ['300 KB body', JSON.stringify({ query: `{ me { id } } # ${'x'.repeat(300 * 1024)}` })],
      ['deeply nested JSON', `{"query": "{ me { id } }", "variables": ${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`],
      ['gzip that is not', '{"query": "{ me { id } }"}', { 'content-encoding': 'gzip' }],
      ['latin1 charset', '{"query": "{ me { id } }"}', { 'content-type': 'application/json; charset=latin1' }],
    ];
    for (const [label, body, headers] of bodies) {
      let o: Outcome;
      try {
        o = await http('', undefined, 'user', body, headers);
      } catch (e) {
        // The server may answer 413 and close before the client finished sending a body above the limit.
        if (body.length > 256 * 1024 && /ECONNRESET|EPIPE|other side closed/.test(String((e as { cause?: unknown }).cause ?? e))) {
          tried++;
          continue;
        }
        throw new Error(`body: ${label}: ${String((e as { cause?: unknown }).cause ?? e)}`);
      }
      inspect(`body: ${label}`, o, [body]);
      // Deeply nested but unused variables are harmless and run; every other body is refused with a 4xx.
      const expected = label === 'deeply nested JSON' ? o.status === 200 : o.status >= 400 && o.status < 500;
      expect(`${label}: ${o.status}`).toBe(expected ? `${label}: ${o.status}` : `${label}: a 4xx`);
    }
    expect((await digest()).ledger).toBe(before.ledger);
    process.stdout.write(`[hostile-input/documents] ${tried - start} malformed documents and bodies tried (${resets} reused connections reset and retried)\n`);
  }, scale(60_000, 300_000));


  it('refuses depth, alias, repeated-field, cost, token and batch attacks on HTTP and websockets alike, under 40 attacks/s of every kind on both transports (the stress run also holds normal requests within 2x their quiet p99, 20 ms floor)', async () => {
    const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: me { id }`).join(' ')} }`;
    const attacks: { name: string; query: string; code: string; message: RegExp }[] = [
      { name: 'depth', query: `{ me { ledger { edges { node { ${'a { '.repeat(12)}b${' }'.repeat(12)} } } } } }`, code: 'GRAPHQL_VALIDATION_FAILED', message: /exceeds maximum operation depth of 10/ },
      { name: 'alias', query: aliases(400), code: 'GRAPHQL_VALIDATION_FAILED', message: /uses more than 50 aliases/ },
      {
        name: 'alias through fragments',
        query: `{ ${Array.from({ length: 10 }, (_, i) => `m${i}: me { ...F }`).join(' ')} } fragment F on Account { ${Array.from({ length: 10 }, (_, i) => `b${i}: balance { available }`).join(' ')} }`,
        code: 'GRAPHQL_VALIDATION_FAILED',
        message: /uses more than 50 aliases/,
      },
      { name: 'cost', query: `{ me { ${Array.from({ length: 10 }, (_, i) => `l${i}: ledger(first: 100) { edges { node { id amount balanceAfter } } }`).join(' ')} } }`, code: 'OPERATION_TOO_COSTLY', message: /above the limit of 5000/ },
      {
        name: 'pages under aliases',
        query: `{ me { ${[0, 1, 2, 3].map((i) => `l${i}: ledger(first: 100) { edges { node { id kind amount balanceAfter description jobId purchaseId createdAt } } }`).join(' ')} ${[0, 1, 2].map((i) => `j${i}: jobs(first: 100) { edges { node { id status credits prompt } } }`).join(' ')} } }`,
        code: 'OPERATION_TOO_COSTLY',
        message: /above the limit of 5000/,
      },
      { name: 'token flood', query: `{ me { id ${'__typename '.repeat(12_000)}} }`, code: 'GRAPHQL_PARSE_FAILED', message: /more that 10000 tokens|more than 10000 tokens/ },
      // Within the token limit, but graphql-js compares every pair of same-named fields: ~60 ms of validation each before the precheck.
      { name: 'repeated field', query: `{ me { ${'balance { available } '.repeat(500)}} }`, code: 'GRAPHQL_VALIDATION_FAILED', message: /selects "balance" more than 20 times in one selection set/ },
      // 1.5 KB whose fragments expand to 2^40 fields: the depth check walked every expansion and never returned.
      {
        name: 'fragment doubling',
        query: `{ me { ...F0 } } ${Array.from({ length: 40 }, (_, i) => `fragment F${i} on Account { ...F${i + 1} ...F${i + 1} }`).join(' ')} fragment F40 on Account { id }`,
        code: 'GRAPHQL_VALIDATION_FAILED',
        message: /selects "id" more than 20 times in one selection set/,
      },
    ];
    const before = await digest();
    const start = tried;
    // Each attack, on each transport, refused with its exact code.
    for (const a of attacks) {
      const h = await http(a.query, undefined, 'user');
      inspect(`attack ${a.name}`, h, [a.query]);
      expect([a.name, h.status, h.body?.errors?.[0]?.extensions?.code]).toEqual([a.name, 400, a.code]);
      expect(h.body!.errors![0].message).toMatch(a.message);
      const w = await ws(a.query, undefined, 'user');
      inspect(`attack ${a.name}`, w, [a.query], Buffer.byteLength(a.query));
      if (Buffer.byteLength(a.query) > 60 * 1024) expect([a.name, w.closeCode]).toEqual([a.name, 1009]); // the frame limit refuses it first
      else {
        expect([a.name, w.body?.errors?.[0]?.extensions?.code, w.text.slice(0, 200)]).toEqual([a.name, a.code, expect.anything()]);
        expect(w.body!.errors![0].message).toMatch(a.message);
      }
    }
    // At the limits, documents run: a field selected 20 times in one set (directly, and through fragments), 50 aliases.
    const atLimits = [
      `{ me { ...R ...R id id } } fragment R on Account { ${'id '.repeat(9)}}`,
      aliases(50),
      `{ me { ledger { edges { node { id } } } plan { tier { code } } balance { ${'available '.repeat(20)}} } }`,
    ];
    for (const q of atLimits) {
      for (const o of [await http(q, undefined, 'user'), await ws(q, undefined, 'user')]) {
        inspect(`at the limits ${q.slice(0, 40)}`, o, [q]);
        expect([q.slice(0, 60), o.transport, o.body?.errors]).toEqual([q.slice(0, 60), o.transport, undefined]);
        expect(o.body?.data?.me ?? o.body?.data?.a0).toBeTruthy();
      }
    }
    // Batches: an HTTP array is refused whole; a websocket frame holding an array is a protocol error (4400).
    const batch = await http('', undefined, 'user', JSON.stringify(Array.from({ length: 50 }, () => ({ query: '{ me { id } }' }))));
    inspect('attack batch', batch, []);
    expect([batch.status, batch.body?.errors?.[0]?.extensions?.code]).toEqual([400, 'BAD_REQUEST']);
    const raw = new WebSocket(t.app.server.wsUrl, 'graphql-transport-ws');
    await new Promise((r) => raw.once('open', r));
    raw.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${await t.app.token(USER)}` } }));
    await new Promise((r) => raw.once('message', r));
    const closed = new Promise<number>((r) => raw.once('close', (code) => r(code)));
    raw.send(JSON.stringify(Array.from({ length: 50 }, (_, i) => ({ id: String(i), type: 'subscribe', payload: { query: '{ me { id } }' } }))));
    expect(await closed).toBe(4400);
    tried++;

    // ---- Latency of a normal request while attackers run at a fixed, documented rate ----
    //
    // The attack: ATTACK_HTTP_PER_S attack requests a second over HTTP and ATTACK_WS_PER_S over
    // websockets (ATTACK_PER_S in all), each transport cycling through every kind above (depth,
    // alias, alias through fragments, cost, pages under aliases, token flood — over HTTP only,
    // the websocket frame limit refuses it first —, repeated field, fragment doubling) and a
    // batch (an HTTP array; a websocket frame holding an array, on a fresh socket). Sent on a
    // fixed schedule (open loop: the next attack does not wait for the previous answer), from a
    // child process, as a real attacker would (its own CPU for building and sending). This is a
    // bounded attack on purpose: an unbounded flood takes the CPU from everyone whatever the
    // server does, and is for the edge (a per-client rate limit in front of the service, sized
    // with the CPU per refused attack printed below; see docs/OPERATIONS.md "Limits").
    //
    // The measure: one client sends a normal operation, one at a time, back to back, through
    // windows of WINDOW_MS each; quiet and attack windows alternate in an ABBA order (quiet,
    // attack, attack, quiet, ...) so drift in the machine's load falls on both alike. The
    // attacker process lives through every window, idle in the quiet ones.
    const ATTACK_HTTP_PER_S = 24;
    const ATTACK_WS_PER_S = 16;
    const ATTACK_PER_S = ATTACK_HTTP_PER_S + ATTACK_WS_PER_S;
    const normal = '{ me { balance { available isLow } } }';
    const probeToken = await t.app.token(PROBE);
    const once = async () => {
      const t0 = performance.now();
      const res = await fetch(t.app.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${probeToken}` }, body: JSON.stringify({ query: normal }) });
      const body = (await res.json()) as { data?: unknown };
      if (res.status !== 200 || !body.data) throw new Error(`a normal request failed: ${res.status}`);
      return performance.now() - t0;
    };
    const attackerScript = `
      const { createClient } = require('graphql-ws');
      const WebSocket = require('ws');
      let cfg, client, timers = [], inFlight = new Set(), counts;
      const reset = () => (counts = { sent: 0, refused: 0, wrong: [], missed: 0 });
      reset();
      const MAX_IN_FLIGHT = 64;
      function fire(run) {
        if (inFlight.size >= MAX_IN_FLIGHT) { counts.missed++; return; }
        counts.sent++;
        const p = run().then((why) => { if (why) counts.wrong.push(why); else counts.refused++; }, (e) => counts.wrong.push(String(e))).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      async function httpAttack(a) {
        const res = await fetch(cfg.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer ' + cfg.token }, body: a.body });
        const body = await res.json().catch(() => ({}));
        const code = body && body.errors && body.errors[0] && body.errors[0].extensions && body.errors[0].extensions.code;
        return res.status === 400 && code === a.code ? undefined : a.name + ' over http: ' + res.status + ' ' + code;
      }
      function wsAttack(a) {
        return new Promise((resolve) => client.subscribe({ query: a.query }, {
          next: () => resolve(a.name + ' over ws: it ran'),
          complete: () => resolve(a.name + ' over ws: it ran'),
          error: (e) => { const code = Array.isArray(e) ? e[0].extensions.code : 'closed ' + (e && e.code); resolve(code === a.code ? undefined : a.name + ' over ws: ' + code); },
        }));
      }
      function wsBatch() {
        return new Promise((resolve) => {
          const s = new WebSocket(cfg.wsUrl, 'graphql-transport-ws');
          s.on('error', () => undefined);
          s.on('open', () => s.send(JSON.stringify({ type: 'connection_init', payload: { authorization: 'Bearer ' + cfg.token } })));
          s.once('message', () => s.send(JSON.stringify(Array.from({ length: 50 }, (_, i) => ({ id: String(i), type: 'subscribe', payload: { query: cfg.normal } })))));
          s.on('close', (code) => resolve(code === 4400 ? undefined : 'batch over ws: closed ' + code));
        });
      }
      // Fixed schedule per transport: attack k leaves at start + k * period, whatever the answers.
      function every(perSecond, attacks, run) {
        const period = 1000 / perSecond, start = performance.now();
        let k = 0, timer;
        const tick = () => {
          fire(() => run(attacks[k % attacks.length]));
          k++;
          timer = setTimeout(tick, Math.max(0, start + k * period - performance.now()));
          timers[slot] = timer;
        };
        const slot = timers.length;
        timers.push(undefined);
        tick();
      }
      process.on('message', async (m) => {
        if (m.cmd === 'config') {
          cfg = m;
          client = createClient({ url: cfg.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: 'Bearer ' + cfg.token } });
          // Warm up both transports (connections open, code paths loaded) before any window.
          for (const a of cfg.http) await httpAttack(a);
          for (const a of cfg.ws) await (a.batch ? wsBatch() : wsAttack(a));
          process.send({ ready: true });
        } else if (m.cmd === 'on') {
          reset();
          every(cfg.httpPerSecond, cfg.http, httpAttack);
          every(cfg.wsPerSecond, cfg.ws, (a) => (a.batch ? wsBatch() : wsAttack(a)));
          process.send({ on: true });
        } else if (m.cmd === 'off') {
          timers.forEach(clearTimeout);
          timers = [];
          await Promise.all([...inFlight]);
          process.send({ off: counts });
        } else if (m.cmd === 'stop') {
          await client.dispose();
          process.exit(0);
        }
      });
    `;
    const small = attacks.filter((a) => Buffer.byteLength(a.query) < 60 * 1024);
    const child = spawn(process.execPath, ['-e', attackerScript], { cwd: process.cwd(), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const reply = <T>(key: string) => new Promise<T>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`the attacker process exited (${code})`));
      const onMessage = (m: Record<string, unknown>) => {
        if (!(key in m)) return;
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(m[key] as T);
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
    type Counts = { sent: number; refused: number; wrong: string[]; missed: number };
    const attackToken = await t.app.token(USER);
    const ready = reply('ready');
    child.send({
      cmd: 'config',
      url: t.app.url,
      wsUrl: t.app.server.wsUrl,
      token: attackToken,
      normal,
      httpPerSecond: ATTACK_HTTP_PER_S,
      wsPerSecond: ATTACK_WS_PER_S,
      http: [
        ...attacks.map((a) => ({ name: a.name, code: a.code, body: JSON.stringify({ query: a.query }) })),
        { name: 'batch', code: 'BAD_REQUEST', body: JSON.stringify(Array.from({ length: 50 }, () => ({ query: normal }))) },
      ],
      ws: [...small.map((a) => ({ name: a.name, code: a.code, query: a.query })), { name: 'batch', batch: true }],
    });
    await ready;

    const pairs = scale(10, 40);
    const WINDOW_MS = 500; // short form: 5 s under attack (~200 attacks), ~1000+ samples of each kind
    const LEAD_IN_MS = 60; // > one HTTP attack period: the attack is under way before the first sample
    const CPU_SPAN_MS = scale(2000, 5000);
    const quiet: number[] = [];
    const loud: number[] = [];
    const wall = { quiet: 0, loud: 0 };
    const attacked: Counts = { sent: 0, refused: 0, wrong: [], missed: 0 };
    const tally = (c: Counts) => {
      attacked.sent += c.sent;
      attacked.refused += c.refused;
      attacked.missed += c.missed;
      attacked.wrong.push(...c.wrong);
    };
    let cpuPerAttack = NaN;
    let attackCoreShare = NaN;
    try {
      for (let i = 0; i < 50; i++) await once(); // warm-up
      const order = Array.from({ length: pairs * 2 }, (_, i) => (i % 4 === 1 || i % 4 === 2 ? 'loud' : 'quiet'));
      for (const kind of order) {
        const w0 = performance.now();
        if (kind === 'loud') {
          const on = reply('on');
          child.send({ cmd: 'on' });
          await on;
        }
        await new Promise((r) => setTimeout(r, LEAD_IN_MS));
        const until = performance.now() + WINDOW_MS;
        while (performance.now() < until) (kind === 'loud' ? loud : quiet).push(await once());
        if (kind === 'loud') {
          const off = reply<Counts>('off');
          child.send({ cmd: 'off' });
          tally(await off);
        }
        wall[kind] += performance.now() - w0;
      }
      // The server's CPU per refused attack, measured apart from the probe: this process (the
      // server; the attackers run in their own) over equal spans idle and under attack.
      const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
      const idle0 = process.cpuUsage();
      await new Promise((r) => setTimeout(r, CPU_SPAN_MS));
      const idle = cpuMs(process.cpuUsage(idle0));
      const on = reply('on');
      child.send({ cmd: 'on' });
      await on;
      const busy0 = process.cpuUsage();
      const b0 = performance.now();
      await new Promise((r) => setTimeout(r, CPU_SPAN_MS));
      const off = reply<Counts>('off');
      child.send({ cmd: 'off' });
      const c = await off;
      const busy = cpuMs(process.cpuUsage(busy0));
      tally(c);
      cpuPerAttack = (busy - idle * ((performance.now() - b0) / CPU_SPAN_MS)) / c.refused;
      attackCoreShare = (cpuPerAttack * c.refused) / (performance.now() - b0);
    } finally {
      child.send({ cmd: 'stop' });
      await new Promise((r) => child.once('exit', r));
    }
    const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
    const p99 = (xs: number[]) => sorted(xs)[Math.ceil(xs.length * 0.99) - 1];
    const p50 = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)];
    const base = p99(quiet);
    const under = p99(loud);
    const rate = attacked.sent / ((wall.loud + CPU_SPAN_MS) / 1000);
    // Latency bound: within 2x the quiet p99, with a floor of 20 ms above it. The floor is the
    // machine's noise, not the server's. On 2 cores running 2 jest workers, the attacker
    // process and PostgreSQL, several tasks wait for each core, and this process (server and
    // probe in one jest worker, a heap of hundreds of MB) pauses for garbage collection; one
    // such wait costs a sample several to tens of ms whatever the attackers do (quiet p99s of
    // 7-32 ms were measured here, at p50s of 2-6 ms). At those levels 2x alone fails on a
    // handful of unlucky samples, and any extra CPU in the attack windows (the attackers' own,
    // on the same cores) moves the tail by ms without telling anything about the server.
    // What the bound still catches: the server answers on one event loop, so a refusal that
    // holds it for more than ~20 ms (a document validated in full before its refusal, a walk
    // that expands fragments) delays every probe arriving meanwhile, and at ATTACK_PER_S that
    // is far more than 1% of them: without the repeated-field precheck (~60 ms of validation per
    // refusal) this test measured a p99 of 90 ms against a bound of 30 (9.5x).
    const bound = Math.max(2 * base, base + 20);
    const load = os.loadavg()[0] / os.cpus().length;
    process.stdout.write(
      `[hostile-input/attacks] ${tried - start} attack documents checked; ${attacked.sent} attacks at ${rate.toFixed(1)}/s (${ATTACK_PER_S}/s scheduled: ${ATTACK_HTTP_PER_S} HTTP + ${ATTACK_WS_PER_S} ws), ${attacked.refused} refused with their code, ${attacked.missed} not sent (${attacked.wrong.length} wrong); ` +
        `normal requests: ${quiet.length} quiet p99 ${base.toFixed(1)} ms (p50 ${p50(quiet).toFixed(1)}), ${loud.length} under attack p99 ${under.toFixed(1)} ms (p50 ${p50(loud).toFixed(1)}) = ${(under / base).toFixed(2)}x, bound ${bound.toFixed(1)} ms; ` +
        `server CPU per refused attack ${cpuPerAttack.toFixed(2)} ms (${(attackCoreShare * 100).toFixed(1)}% of a core at ${ATTACK_PER_S}/s); machine load ${load.toFixed(1)} per core\n`,
    );
    expect(attacked.wrong.slice(0, 5)).toEqual([]);
    expect(attacked.refused).toBe(attacked.sent);
    expect((await digest()).ledger).toBe(before.ledger);
    // Wall-clock figures (the attack's rate, the latency bound) depend on what else the machine
    // does: asserted by the stress run only (npm run test:stress), printed above in npm test.
    if (STRESS) {
      // The attack really ran at its rate: every scheduled attack left, none waited for a slot.
      expect(attacked.missed).toBe(0);
      expect(rate).toBeGreaterThanOrEqual(0.8 * ATTACK_PER_S);
      expect(under).toBeLessThanOrEqual(bound);
    }
  }, scale(120_000, 600_000));

  it('refuses requests shaped like a browser simple request (CSRF prevention), and mutations over GET', async () => {
    const before = await digest();
    const token = await t.app.token(USER);
    const buy = 'mutation { purchaseCreditPack(input: { packCode: "STARTER" }) { purchase { id } } }';
    const url = (q: string) => `${t.app.url}?query=${encodeURIComponent(q)}`;
    const cases: [string, () => Promise<Response>, number][] = [
      ['GET without a preflight header', () => fetch(url('{ me { id } }'), { headers: { authorization: `Bearer ${token}` } }), 400],
      ['POST text/plain', () => fetch(t.app.url, { method: 'POST', headers: { 'content-type': 'text/plain', authorization: `Bearer ${token}` }, body: JSON.stringify({ query: buy }) }), 400],
      ['POST form-urlencoded', () => fetch(t.app.url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${token}` }, body: `query=${encodeURIComponent(buy)}` }), 400],
      ['POST multipart', () => { const f = new FormData(); f.set('query', buy); return fetch(t.app.url, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: f }); }, 400],
      ['POST without a content type', () => fetch(t.app.url, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: new Blob([JSON.stringify({ query: buy })]) }), 400],
      ['a mutation over GET, even preflighted', () => fetch(url(buy), { headers: { authorization: `Bearer ${token}`, 'apollo-require-preflight': '1' } }), 405],
    ];
    for (const [label, send, status] of cases) {
      const res = await send();
      const text = await res.text();
      tried++;
      expect(`${label}: ${res.status}`).toBe(`${label}: ${status}`);
      expect(text).not.toMatch(LEAK);
      if (status === 400) expect(text).toMatch(/Cross-Site Request Forgery|content-type/i);
    }
    // The same requests with the header a browser cannot send without a preflight are served.
    const ok = await fetch(url('{ me { id } }'), { headers: { authorization: `Bearer ${token}`, 'apollo-require-preflight': '1' } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ data: { me: { id: USER } } });
    const named = await fetch(url('{ me { id } }'), { headers: { authorization: `Bearer ${token}`, 'x-apollo-operation-name': 'Me' } });
    expect(named.status).toBe(200);
    expect((await digest()).ledger).toBe(before.ledger);
  });

  it('runs with introspection off, no schema hints, and internal errors masked, on HTTP and websockets', async () => {
    for (const q of ['{ __schema { types { name } } }', '{ __type(name: "Account") { fields { name } } }', '{ me { id __type(name: "Account") { name } } }']) {
      const h = await http(q, undefined, 'user');
      const w = await ws(q, undefined, 'user');
      for (const o of [h, w]) {
        inspect(`introspection ${q}`, o, [q]);
        expect(o.body?.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
        expect(o.body?.errors?.map((e) => e.message).join(' ')).toMatch(/introspection|Cannot query field "__type"/);
        expect(o.text).not.toMatch(/"fields"|"types"/);
      }
    }
    // Misspelt names get no "Did you mean" (which would hand the schema out field by field).
    for (const q of ['{ mee { id } }', '{ me { balanse { available } } }', 'mutation { purchaseCreditPak(input: { packCode: "STARTER" }) { purchase { id } } }']) {
      for (const o of [await http(q, undefined, 'user'), await ws(q, undefined, 'user')]) {
        inspect(`suggestions ${q}`, o, [q]);
        expect(o.body?.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
        expect(o.text).not.toMatch(/Did you mean/);
      }
    }
    // A fault inside the service: the client sees "Internal server error" and its code, nothing more.
    await t.app.audit.query('ALTER TABLE notifications RENAME TO notifications_hidden');
    try {
      const q = '{ me { notifications { totalCount edges { node { id } } } } }';
      for (const o of [await http(q, undefined, 'user'), await ws(q, undefined, 'user')]) {
        tried++;
        expect(o.body?.errors).toEqual([
          { message: 'Internal server error', path: ['me', 'notifications'], locations: [{ line: 1, column: 8 }], extensions: { code: 'INTERNAL_SERVER_ERROR' } },
        ]);
        expect(o.text).not.toMatch(/notifications_hidden|relation|SELECT|stack|\.ts:/i);
      }
    } finally {
      await t.app.audit.query('ALTER TABLE notifications_hidden RENAME TO notifications');
    }
    // A value the database refuses (NUL) is the request's fault, told without the database's words.
    const nul = await http('query($id: ID!) { account(id: $id) { id } }', { id: 'x\u0000y' }, 'admin');
    inspect('NUL account id', nul, []);
    expect(nul.body?.errors?.map((e) => [e.message, e.extensions?.code])).toEqual([['A value in the request is not valid', 'BAD_USER_INPUT']]);
  });

});

