/**
 * GET /metrics (Prometheus text, one registry per instance): what each counter, gauge and
 * histogram says after a known set of requests, read by parsing the text format.
 */
import { ConfigError, loadConfig } from '../src/config';
import net from 'node:net';
import { register as globalRegistry } from 'prom-client';
import { BalanceChangedDocument, CreditWarningDocument, MeDocument, StartGenerationDocument, type GenerationSettingsInput } from './graphql/generated';
import { adjustCredits, openAccount } from './helpers/accounts';
import { subscribe } from './helpers/subscriptions';
import { eventually, startTestApp, useTestApp, type TestApp } from './helpers/test-app';

const t = useTestApp({ JOB_SWEEP_INTERVAL_MS: '100' });

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One scrape, parsed: `# TYPE` lines and samples (`name{label="value",…} number`). */
class Scrape {
  constructor(readonly types: Map<string, string>, readonly samples: Sample[]) {}

  static parse(text: string): Scrape {
    const types = new Map<string, string>();
    const samples: Sample[] = [];
    for (const line of text.split('\n')) {
      if (!line) continue;
      const type = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (type) types.set(type[1], type[2]);
      if (line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m) throw new Error(`not a sample line: ${line}`);
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      samples.push({ name: m[1], labels, value: Number(m[3]) });
    }
    return new Scrape(types, samples);
  }

  /** The sample with exactly these labels (undefined when absent). */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const want = Object.entries(labels).sort();
    const s = this.samples.find((x) => x.name === name && JSON.stringify(Object.entries(x.labels).sort()) === JSON.stringify(want));
    return s?.value;
  }

  /** Every sample of `name`. */
  all(name: string): Sample[] {
    return this.samples.filter((s) => s.name === name);
  }
}

async function scrape(url: string): Promise<Scrape> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return Scrape.parse(await res.text());
}

const metricsOf = (app: TestApp) => scrape(app.server.metricsUrl);

/** What changed between two scrapes, per sample of `name` (label sets that did not change left out). */
function changes(before: Scrape, after: Scrape, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of after.all(name)) {
    const d = s.value - (before.value(name, s.labels) ?? 0);
    if (d !== 0) out[Object.values(s.labels).join(' ')] = d;
  }
  return out;
}

const nested = (depth: number): string => (depth === 0 ? 'id' : `f${depth} { ${nested(depth - 1)} }`);
const STANDARD_IMAGE: GenerationSettingsInput = { type: 'IMAGE', imageQuality: 'STANDARD' }; // 1 credit
const HIGH_IMAGE: GenerationSettingsInput = { type: 'IMAGE', imageQuality: 'HIGH' }; // 3 credits

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

describe('GET /metrics', () => {
  it('counts HTTP operations by name and the code sent, refusals before Apollo and before the operation is read included', async () => {
    await openAccount(t.app, 'metrics-http');
    const before = await metricsOf(t.app);

    for (let i = 0; i < 3; i++) expect((await t.app.gql(MeDocument, {}, { sub: 'metrics-http' })).errors).toBeUndefined();
    const anonymous = await t.app.gql(MeDocument, {}, null);
    expect(anonymous.errors!.map((e) => e.extensions!.code)).toEqual(['UNAUTHENTICATED']);
    const badToken = await t.app.gql(MeDocument, {}, { token: 'not-a-jwt' });
    expect(badToken.errors!.map((e) => e.extensions!.code)).toEqual(['UNAUTHENTICATED']);
    const deep = await fetch(t.app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `query Deep { me { ${nested(12)} } }`, operationName: 'Deep' }),
    });
    expect(((await deep.json()) as { errors: { extensions: { code: string } }[] }).errors.map((e) => e.extensions.code)).toEqual(['GRAPHQL_VALIDATION_FAILED']);

    const after = await metricsOf(t.app);
    expect(after.types.get('credits_graphql_requests_total')).toBe('counter');
    expect(changes(before, after, 'credits_graphql_requests_total')).toEqual({
      'http Me OK': 3,
      'http Me UNAUTHENTICATED': 1,
      'http unknown UNAUTHENTICATED': 1, // the token was refused before Apollo read the operation
      'http Deep GRAPHQL_VALIDATION_FAILED': 1, // refused by the operation gate in front of Apollo
    });
    expect(changes(before, after, 'credits_graphql_errors_total')).toEqual({
      'http Me UNAUTHENTICATED': 1,
      'http unknown UNAUTHENTICATED': 1,
      'http Deep GRAPHQL_VALIDATION_FAILED': 1,
    });
  });

  it('counts a start accepted and a start refused for INSUFFICIENT_CREDITS once each, and the batch each went in', async () => {
    await openAccount(t.app, 'metrics-starter', { balance: 2 });
    const start = (settings: GenerationSettingsInput, idempotencyKey?: string) =>
      t.app.gql(StartGenerationDocument, { input: { settings, prompt: 'a lighthouse', idempotencyKey } }, { sub: 'metrics-starter' });
    const before = await metricsOf(t.app);

    const accepted = (await start(STANDARD_IMAGE, 'metrics-k1')).data!.startGeneration;
    expect(accepted.userErrors).toEqual([]);
    const replay = (await start(STANDARD_IMAGE, 'metrics-k1')).data!.startGeneration; // the kept answer: decided once
    expect(replay.job!.id).toBe(accepted.job!.id);
    const refused = (await start(HIGH_IMAGE)).data!.startGeneration;
    expect(refused.userErrors.map((e) => e.code)).toEqual(['INSUFFICIENT_CREDITS']);

    const after = await metricsOf(t.app);
    expect(changes(before, after, 'credits_generation_starts_total')).toEqual({ ACCEPTED: 1, INSUFFICIENT_CREDITS: 1 });
    expect(after.types.get('credits_generation_start_batch_size')).toBe('histogram');
    // Two statements (the replay never reached the database), each of one start.
    expect(changes(before, after, 'credits_generation_start_batch_size_count')).toEqual({ '': 2 });
    expect(changes(before, after, 'credits_generation_start_batch_size_sum')).toEqual({ '': 2 });
    expect(changes(before, after, 'credits_generation_start_batch_size_bucket')).toEqual(Object.fromEntries(['1', '2', '4', '8', '16', '32', '64', '128', '+Inf'].map((le) => [le, 2])));
    // userErrors are answers, not GraphQL errors.
    expect(changes(before, after, 'credits_graphql_requests_total')).toEqual({ 'http StartGeneration OK': 3 });
  });

  it('shows websocket connections and operations rising as they open and falling back to zero as they close, and counts websocket operations', async () => {
    await openAccount(t.app, 'metrics-ws');
    const gauges = async () => {
      const m = await metricsOf(t.app);
      return [m.value('credits_ws_connections'), m.value('credits_ws_subscriptions')];
    };
    await eventually(async () => JSON.stringify(await gauges()) === '[0,0]');
    const before = await metricsOf(t.app);

    const one = subscribe(t.app.ws({ sub: 'metrics-ws' }), BalanceChangedDocument);
    const twoClient = t.app.ws({ sub: 'metrics-ws' });
    const two = subscribe(twoClient, BalanceChangedDocument);
    const warnings = subscribe(twoClient, CreditWarningDocument);
    await one.waitFor(1);
    await two.waitFor(1);
    await eventually(async () => JSON.stringify(await gauges()) === '[2,3]');

    const me = subscribe(twoClient, MeDocument); // a query over the socket: one result, then complete
    expect((await me.waitFor(1))[0].me.id).toBe('metrics-ws');
    const refused = await new Promise<unknown>((resolve) =>
      twoClient.subscribe({ query: `{ me { ${nested(12)} } }` }, { next: () => resolve('ran'), error: resolve, complete: () => undefined }),
    );
    expect((refused as { extensions: { code: string } }[]).map((e) => e.extensions.code)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    await eventually(async () => JSON.stringify(await gauges()) === '[2,3]');

    await one.dispose();
    warnings.unsubscribe();
    await eventually(async () => JSON.stringify(await gauges()) === '[1,1]');
    await two.dispose();
    await eventually(async () => JSON.stringify(await gauges()) === '[0,0]');

    const after = await metricsOf(t.app);
    expect(after.types.get('credits_ws_connections')).toBe('gauge');
    expect(changes(before, after, 'credits_graphql_requests_total')).toEqual({
      'ws BalanceChanged OK': 2, // each subscription once, as it started
      'ws CreditWarning OK': 1,
      'ws Me OK': 1,
      'ws anonymous GRAPHQL_VALIDATION_FAILED': 1,
    });
    expect(changes(before, after, 'credits_graphql_errors_total')).toEqual({ 'ws anonymous GRAPHQL_VALIDATION_FAILED': 1 });
  });

  it('times each event sent to a subscriber from its arrival, and not the current value a subscription starts with', async () => {
    await openAccount(t.app, 'metrics-lag');
    const before = await metricsOf(t.app);
    const sub = subscribe(t.app.ws({ sub: 'metrics-lag' }), BalanceChangedDocument);
    await sub.waitFor(1); // the balance as it is now: read, not an event
    const started = await metricsOf(t.app);
    expect(changes(before, started, 'credits_event_lag_seconds_count')).toEqual({});

    for (const amount of [5, -2]) expect((await adjustCredits(t.app, 'metrics-lag', amount)).data!.adjustCredits.userErrors).toEqual([]);
    await sub.waitFor(3);
    const after = await metricsOf(t.app);
    await sub.dispose();
    expect(after.types.get('credits_event_lag_seconds')).toBe('histogram');
    expect(changes(started, after, 'credits_event_lag_seconds_count')).toEqual({ '': 2 });
    expect(changes(started, after, 'credits_event_lag_seconds_bucket')['+Inf']).toBe(2);
    expect(after.value('credits_event_lag_seconds_sum')).toBeGreaterThanOrEqual(0);
  });

  it('counts every kind of timed work as it runs, and a failing kind as a failure while the others run on', async () => {
    const kinds = ['leases', 'renewals', 'expiries', 'intents', 'retention', 'expiryWarnings'];
    const of = (m: Scrape, name: string) => kinds.map((kind) => m.value(name, { kind }));
    await eventually(async () => of(await metricsOf(t.app), 'credits_sweep_runs_total').every((n) => n! >= 1));
    expect(of(await metricsOf(t.app), 'credits_sweep_failures_total')).toEqual([0, 0, 0, 0, 0, 0]);

    // Expiring lots needs ledger_take_lot: without it, expiries fail and nothing else does.
    await t.app.audit.query('ALTER FUNCTION ledger_take_lot RENAME TO ledger_take_lot_away');
    let failedAt: Scrape | undefined;
    try {
      await eventually(async () => (failedAt = await metricsOf(t.app)).value('credits_sweep_failures_total', { kind: 'expiries' })! >= 1);
      const intentsRuns = failedAt!.value('credits_sweep_runs_total', { kind: 'intents' })!;
      await eventually(async () => (await metricsOf(t.app)).value('credits_sweep_runs_total', { kind: 'intents' })! > intentsRuns);
    } finally {
      await t.app.audit.query('ALTER FUNCTION ledger_take_lot_away RENAME TO ledger_take_lot');
    }
    const after = await metricsOf(t.app);
    expect(of(after, 'credits_sweep_failures_total').map((n, i) => (kinds[i] === 'expiries' ? n! >= 1 : n))).toEqual([0, 0, true, 0, 0, 0]);
    expect(after.types.get('credits_sweep_runs_total')).toBe('counter');
  });
});

describe('GET /metrics: the database pool', () => {
  it('reads the pool at each scrape: connections in use, queries waiting, idle and the size', async () => {
    const app = await startTestApp({ DB_POOL_SIZE: '2', JOB_SWEEP_INTERVAL_MS: '3600000' });
    const lock = await app.audit.connect();
    try {
      const pool = async () => {
        const m = await metricsOf(app);
        return ['in_use', 'waiting', 'max'].map((g) => m.value(g === 'waiting' ? 'credits_db_pool_waiting' : `credits_db_pool_connections_${g}`));
      };
      await lock.query('SELECT pg_advisory_lock(4242)');
      // Three queries for two connections, all held by the lock: two in use, one waiting.
      const held = [1, 2, 3].map(() => app.server.services.db.query('SELECT pg_advisory_xact_lock_shared(4242)'));
      await eventually(async () => JSON.stringify(await pool()) === '[2,1,2]');
      await lock.query('SELECT pg_advisory_unlock(4242)');
      await Promise.all(held);
      const m = await metricsOf(app);
      expect([m.value('credits_db_pool_connections_in_use'), m.value('credits_db_pool_waiting')]).toEqual([0, 0]);
      expect(m.value('credits_db_pool_connections_idle')).toBe(2);
      expect(m.types.get('credits_db_pool_waiting')).toBe('gauge');
    } finally {
      lock.release();
      await app.stop();
    }
  });
});

describe('METRICS_PORT', () => {
  it('serves /metrics on its own port only, on a registry of the instance, and closes it when the instance stops', async () => {
    const port = await freePort();
    const app = await startTestApp({ METRICS_PORT: String(port) });
    let stopped = false;
    try {
      expect(app.server.metricsUrl).toBe(`http://127.0.0.1:${port}/metrics`);
      expect((await fetch(`http://127.0.0.1:${app.server.port}/metrics`)).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);

      const main = await metricsOf(t.app);
      await openAccount(app, 'metrics-port');
      const m = await metricsOf(app);
      // Its own registry: this instance's one Me, none of the other instance's, default process metrics too.
      expect(m.value('credits_graphql_requests_total', { transport: 'http', operation: 'Me', code: 'OK' })).toBe(1);
      expect(main.value('credits_graphql_requests_total', { transport: 'http', operation: 'Me', code: 'OK' })).toBeGreaterThanOrEqual(3);
      expect((await metricsOf(t.app)).value('credits_graphql_requests_total', { transport: 'http', operation: 'Me', code: 'OK' })).toBe(
        main.value('credits_graphql_requests_total', { transport: 'http', operation: 'Me', code: 'OK' }),
      );
      expect(m.types.get('process_cpu_user_seconds_total')).toBe('counter');
      expect(m.value('credits_ws_connections')).toBe(0);
      expect((await globalRegistry.getMetricsAsJSON()).map((x) => x.name)).toEqual([]);

      await app.stop();
      stopped = true;
      await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
    } finally {
      if (!stopped) await app.stop();
    }
  });
});

describe('METRICS_PORT', () => {
  it('refuses a METRICS_PORT equal to PORT at start, naming both', () => {
    expect(() => loadConfig({ PORT: '4100', METRICS_PORT: '4100' })).toThrow(new ConfigError('METRICS_PORT', "accepts 0 (metrics on the API's port) or a port other than PORT=4100", '4100'));
  });
});
