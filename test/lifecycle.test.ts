import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import WebSocket from 'ws';
import { Role } from '../src/common/auth/role.enum';
import { freePort } from '../src/common/db/embedded-postgres';
import { BalanceChangedDocument, SetLowCreditThresholdDocument } from './graphql/generated';
import { balanceOf, openAccount, signupCredits, signupCreditsAt } from './helpers/accounts';
import { startService } from './helpers/process';
import { subscribe, untilLive } from './helpers/subscriptions';
import { eventually, startTestApp } from './helpers/test-app';

async function gql(port: number, token: string, query: string) {
  const res = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query }),
  });
  return (await res.json()) as { data?: any; errors?: any[] };
}

function tokens(output: string): { user: string; admin: string } {
  const user = /user\s+\(sub demo-user\): (\S+)/.exec(output)![1];
  const admin = /admin\s+\(sub demo-admin\): (\S+)/.exec(output)![1];
  return { user, admin };
}

describe('configuration', () => {
  it('refuses to start on a bad value, naming the variable and what it accepts', async () => {
    const svc = startService({ PORT: 'eighty' });
    expect((await svc.exited).code).toBe(2);
    expect(svc.output()).toContain('Invalid PORT="eighty": accepts a whole number from 0 to 65535');
  });

  it('refuses to start in production without a JWT secret', async () => {
    const svc = startService({ NODE_ENV: 'production', DATABASE_URL: 'postgres://x@127.0.0.1:1/x' });
    expect((await svc.exited).code).toBe(2);
    expect(svc.output()).toContain('JWT_SECRET');
    expect(svc.output()).toContain('is required when NODE_ENV=production');
  });

  it('refuses the stripe provider without its secrets', async () => {
    const svc = startService({ PAYMENT_PROVIDER: 'stripe', DATABASE_URL: 'postgres://x@127.0.0.1:1/x' });
    expect((await svc.exited).code).toBe(2);
    expect(svc.output()).toContain('Invalid STRIPE_SECRET_KEY="": is required with PAYMENT_PROVIDER=stripe');
  });

  it('refuses to start in production unless a real payment provider is set explicitly (the sandbox gives packs and plans away)', async () => {
    for (const provider of [undefined, 'sandbox']) {
      const svc = startService({ NODE_ENV: 'production', JWT_SECRET: 'a-long-enough-secret-0123456789abcdef', DATABASE_URL: 'postgres://x@127.0.0.1:1/x', ...(provider ? { PAYMENT_PROVIDER: provider } : {}) });
      expect((await svc.exited).code).toBe(2);
      expect(svc.output()).toContain(`Invalid PAYMENT_PROVIDER="${provider ?? ''}": must be set to stripe when NODE_ENV=production (sandbox is for development and tests only)`);
    }
  });

  it('refuses a fixed clock start in production, and a start that is not an instant', async () => {
    const prod = startService({ NODE_ENV: 'production', JWT_SECRET: 'a-long-enough-secret-0123456789abcdef', PAYMENT_PROVIDER: 'stripe', TEST_CLOCK_START: '2024-02-29T12:00:00Z' });
    expect((await prod.exited).code).toBe(2);
    expect(prod.output()).toContain('Invalid TEST_CLOCK_START="2024-02-29T12:00:00Z": must be unset when NODE_ENV=production');
    const bad = startService({ TEST_CLOCK_START: 'yesterday', DATABASE_URL: 'postgres://x@127.0.0.1:1/x' });
    expect((await bad.exited).code).toBe(2);
    expect(bad.output()).toContain('Invalid TEST_CLOCK_START="yesterday": accepts an ISO 8601 instant such as 2024-02-29T12:00:00Z');
  });

  it('refuses the test clock in production', async () => {
    const svc = startService({ NODE_ENV: 'production', JWT_SECRET: 'a-long-enough-secret-0123456789abcdef', PAYMENT_PROVIDER: 'stripe', TEST_CLOCK: '1' });
    expect((await svc.exited).code).toBe(2);
    expect(svc.output()).toContain('Invalid TEST_CLOCK="1": accepts only 0 when NODE_ENV=production');
  });
});

describe('the service on its embedded database', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'credits-life-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('starts, prints demo tokens, stops cleanly on SIGTERM and keeps every balance across a restart', async () => {
    const port = await freePort();
    const env = { DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'info' };

    let started = Date.now();
    const first = startService(env);
    await first.waitFor(/sub demo-worker\): \S+/);
    const firstStartMs = Date.now() - started;
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    let t = tokens(first.output());
    const signup = await signupCreditsAt(`http://127.0.0.1:${port}/graphql`);
    const me = await gql(port, t.user, '{ me { id balance { available } } }');
    expect(me.data.me).toEqual({ id: 'demo-user', balance: { available: signup } });
    const adj = await gql(port, t.admin, 'mutation { adjustCredits(input: { accountId: "demo-user", amount: -7, reason: "restart test" }) { balance { available } } }');
    expect(adj.data.adjustCredits.balance.available).toBe(signup - 7);

    // An open websocket is closed by the shutdown (1001 going away), not left hanging.
    const socket = new WebSocket(`ws://127.0.0.1:${port}/graphql`, 'graphql-transport-ws');
    await new Promise((r) => socket.on('open', r));
    socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${t.user}` } }));
    await new Promise((r) => socket.on('message', r));
    const socketClosed = new Promise<number>((r) => socket.on('close', (code) => r(code)));

    first.child.kill('SIGTERM');
    const firstExit = await first.exited;
    if (firstExit.code !== 0) console.log(first.output());
    expect(firstExit).toEqual({ code: 0, signal: null });
    expect(first.output()).toContain('stopped cleanly');
    expect(await socketClosed).toBe(1001);

    started = Date.now();
    const second = startService(env);
    await second.waitFor(/sub demo-worker\): \S+/);
    const secondStartMs = Date.now() - started;
    t = tokens(second.output());
    const again = await gql(port, t.user, '{ me { balance { available lots { source remaining } } ledger { totalCount } } }');
    expect(again.data.me.balance).toEqual({ available: signup - 7, lots: [{ source: 'SIGNUP_BONUS', remaining: signup - 7 }] });
    expect(again.data.me.ledger.totalCount).toBe(2);
    second.child.kill('SIGINT');
    expect((await second.exited).code).toBe(0);
    process.stdout.write(`startup: first ${firstStartMs} ms (initdb + migrations), second ${secondStartMs} ms\n`);
  });

  it('recovers when the process was killed with the database left running', async () => {
    const port = await freePort();
    const env = { DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'info' };
    const killed = startService(env);
    await killed.waitFor(/sub demo-worker\): \S+/);
    killed.child.kill('SIGKILL');
    await killed.exited;
    const next = startService(env);
    await next.waitFor(/sub demo-worker\): \S+/);
    expect(next.output()).toContain('stopping an embedded PostgreSQL left running by an earlier process');
    const t = tokens(next.output());
    const me = await gql(port, t.user, '{ me { balance { available } } }');
    expect(me.data.me.balance.available).toBe((await signupCreditsAt(`http://127.0.0.1:${port}/graphql`)) - 7); // as the first run left it
    next.child.kill('SIGTERM');
    expect((await next.exited).code).toBe(0);
  });
});

describe('readiness', () => {
  it('reports 503 while the database refuses connections and recovers, events included, when it returns', async () => {
    const app = await startTestApp();
    const base = app.url.replace('/graphql', '');
    const dbName = new URL(app.databaseUrl).pathname.slice(1);
    await openAccount(app, 'ready-user');
    const admin = new Client({ connectionString: process.env.TEST_PG_ADMIN_URL });
    await admin.connect();
    try {
      await admin.query(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS false`);
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [dbName]);
      await eventually(async () => (await fetch(`${base}/readyz`)).status === 503, 10000);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      await admin.query(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`);
      await eventually(async () => (await fetch(`${base}/readyz`)).status === 200, 10000);

      const sub = subscribe(app.ws({ sub: 'ready-user' }), BalanceChangedDocument);
      await untilLive(sub, () => app.gql(SetLowCreditThresholdDocument, { threshold: 5 }, { sub: 'ready-user' }), 10000);
      await sub.dispose();
    } finally {
      await admin.query(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`).catch(() => undefined);
      await admin.end();
      app.audit.end().catch(() => undefined);
      await app.server.stop();
    }
  });
});

describe('graceful shutdown', () => {
  it('finishes a request in flight before closing the pool, and refuses new connections', async () => {
    const app = await startTestApp();
    const signup = await signupCredits(app);
    await openAccount(app, 'inflight');
    // Hold the account row so the adjustment is still running when the stop begins.
    const blocker = new Client({ connectionString: app.databaseUrl });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query(`SELECT 1 FROM accounts WHERE id = 'inflight' FOR UPDATE`);
    const token = await app.token('ops', Role.ADMIN);
    const inFlight = fetch(app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: 'mutation { adjustCredits(input: { accountId: "inflight", amount: -5, reason: "in flight" }) { balance { available } } }' }),
    });
    await eventually(async () => {
      const r = await app.audit.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`);
      return r.rows[0].n > 0;
    });
    const stopped = app.server.stop();
    await new Promise((r) => setTimeout(r, 200));
    await expect(fetch(app.url.replace('/graphql', '/healthz'))).rejects.toThrow();
    await blocker.query('COMMIT');
    await blocker.end();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).data.adjustCredits.balance.available).toBe(signup - 5);
    await stopped;
    expect(await balanceOf(app, 'inflight')).toBe(signup - 5);
    await app.audit.end();
  });
});
