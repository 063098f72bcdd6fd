/**
 * A real server (express + Apollo + graphql-ws) on a fresh database cloned from the migrated
 * template, clients for HTTP and websockets, and an auditor connection that checks the ledger
 * invariants after every test. The server's pool connects as the runtime role (member of
 * credits_runtime, owning nothing) and migrates as the owner; the auditor is the owner.
 */
import { randomBytes } from 'node:crypto';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type GraphQLFormattedError } from 'graphql';
import { createClient, type Client as WsClient } from 'graphql-ws';
import { Client, Pool } from 'pg';
import pino from 'pino';
import WebSocket from 'ws';
import { signToken } from '../../src/common/auth/jwt';
import { Role } from '../../src/common/auth/role.enum';
import { loadConfig, type Config } from '../../src/config';
import { createServer, type RunningServer } from '../../src/server';
import { assertLedgerInvariants } from './invariants';

/** At least 32 bytes, as loadConfig requires of JWT_SECRET. */
export const TEST_JWT_SECRET = 'test-secret-0123456789abcdef-0123456789';

/** A token the test servers (JWT_SECRET=TEST_JWT_SECRET) accept, for servers in this process or child processes. */
export function testToken(sub: string, role: Role = Role.USER, ttlSeconds?: number): Promise<string> {
  return signToken(TEST_JWT_SECRET, sub, role, ttlSeconds);
}

export interface GqlResult<T> {
  status: number;
  data?: T | null;
  errors?: GraphQLFormattedError[];
}

export class TestApp {
  constructor(
    readonly server: RunningServer,
    readonly databaseUrl: string,
    readonly audit: Pool,
    readonly config: Config,
  ) {}

  get url(): string {
    return this.server.url;
  }

  token(sub: string, role: Role = Role.USER, ttlSeconds?: number): Promise<string> {
    return testToken(sub, role, ttlSeconds);
  }

  /** Rows of a query through the auditor's connection (reads of what the server wrote). */
  async rows<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await this.audit.query(sql, params)).rows as T[];
  }

  /** The first row of `rows(sql, params)`. */
  async one<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T> {
    return (await this.rows<T>(sql, params))[0];
  }

  /** Sends a typed operation over HTTP as `sub` (or with a raw token, or none). */
  async gql<TData, TVars>(
    doc: TypedDocumentNode<TData, TVars>,
    variables: TVars | undefined,
    as?: { sub: string; role?: Role } | { token: string } | null,
  ): Promise<GqlResult<TData>> {
    return this.raw(print(doc), variables as Record<string, unknown> | undefined, as);
  }

  async raw<TData = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    as?: { sub: string; role?: Role } | { token: string } | null,
  ): Promise<GqlResult<TData>> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (as) headers.authorization = `Bearer ${'token' in as ? as.token : await this.token(as.sub, as.role)}`;
    const res = await fetch(this.url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
    const body = (await res.json()) as { data?: TData; errors?: GraphQLFormattedError[] };
    return { status: res.status, data: body.data, errors: body.errors };
  }

  /** A graphql-ws client (the library's own) for `sub`; it connects on its first subscription. */
  ws(auth: { sub: string; role?: Role } | { token: string } | { params: Record<string, unknown> }, onClose?: (code: number, reason: string) => void): WsClient {
    return createClient({
      url: this.server.wsUrl,
      webSocketImpl: WebSocket,
      lazy: true,
      retryAttempts: 0,
      connectionParams: async () => {
        if ('params' in auth) return auth.params;
        const token = 'token' in auth ? auth.token : await this.token(auth.sub, auth.role);
        return { authorization: `Bearer ${token}` };
      },
      on: { closed: (e) => onClose?.((e as { code: number }).code, (e as { reason: string }).reason) },
    });
  }

  async checkInvariants(): Promise<void> {
    await assertLedgerInvariants(this.audit);
  }

  async stop(): Promise<void> {
    await this.server.stop();
    await this.audit.end();
  }
}

/**
 * `url` (a database of the test server, as its owner) as the run's runtime login role
 * (TEST_PG_RUNTIME_URL, see global-setup); a URL of another server is returned as it is.
 */
export function asRuntimeRole(url: string): string {
  const runtime = process.env.TEST_PG_RUNTIME_URL;
  if (!runtime) return url;
  const r = new URL(runtime);
  const u = new URL(url);
  if (u.host !== r.host) return url;
  u.username = r.username;
  u.password = r.password;
  return u.toString();
}

/** A database cloned from the migrated template (grants included); its URL is the owner's. */
export async function createTestDatabase(): Promise<string> {
  const adminUrl = process.env.TEST_PG_ADMIN_URL!;
  const name = `credits_t_${process.env.TEST_RUN_ID}_${randomBytes(5).toString('hex')}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE ${name} TEMPLATE ${process.env.TEST_PG_TEMPLATE}`);
        break;
      } catch (e) {
        // Two files cloning the template at the same moment: try again shortly.
        if (attempt > 20 || !/being accessed by other users/.test(String(e))) throw e;
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
      }
    }
  } finally {
    await admin.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

/**
 * Where every test's clock starts: a fixed instant, never today, so a suite gives the same result
 * on every calendar date. `TEST_CLOCK_START=… npm test` runs it from another instant
 * (scripts/time-matrix.sh runs the time-driven suites from several).
 */
export const TEST_CLOCK_START = process.env.TEST_CLOCK_START ?? '2025-01-31T18:00:00.000Z';

/** The service's configuration for tests; `databaseUrl` is the owner's: the pool connects as the runtime role. */
export function testConfig(databaseUrl: string, env: Record<string, string> = {}): Config {
  if (env.NODE_ENV === 'production' && !env.PAYMENT_PROVIDER) {
    // Production refuses to start on the sandbox (tested in lifecycle.test.ts); tests of
    // production's masking and limits still make their fixtures with it.
    const config = testConfig(databaseUrl, { ...env, PAYMENT_PROVIDER: 'stripe', STRIPE_SECRET_KEY: 'sk_test_unused', STRIPE_WEBHOOK_SECRET: 'whsec_unused' });
    return { ...config, paymentProvider: 'sandbox', stripe: undefined, clockStart: undefined };
  }
  return loadConfig({
    NODE_ENV: 'test',
    TEST_CLOCK_START: env.NODE_ENV === 'production' ? '' : TEST_CLOCK_START,
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: asRuntimeRole(databaseUrl),
    ...(asRuntimeRole(databaseUrl) !== databaseUrl ? { DATABASE_OWNER_URL: databaseUrl } : {}),
    JWT_SECRET: TEST_JWT_SECRET,
    SIMULATED_WORKER: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DB_POOL_SIZE: '20',
    SHUTDOWN_TIMEOUT_MS: '2000',
    ...env,
  });
}

export async function startTestApp(env: Record<string, string> = {}, databaseUrl?: string): Promise<TestApp> {
  const url = databaseUrl ?? (await createTestDatabase());
  const config = testConfig(url, env);
  const server = await createServer(config, pino({ level: config.logLevel }));
  const audit = new Pool({ connectionString: url, max: 2, application_name: 'auditor' });
  audit.on('error', () => undefined); // an idle auditor connection may be terminated by a test
  return new TestApp(server, url, audit, config);
}

/** One server per test file; the ledger invariants are checked after every test. */
export function useTestApp(env: Record<string, string> = {}): { readonly app: TestApp } {
  const holder = {} as { app: TestApp };
  beforeAll(async () => {
    holder.app = await startTestApp(env);
  });
  afterEach(async () => {
    await holder.app?.checkInvariants();
  });
  afterAll(async () => {
    await holder.app?.stop();
  });
  return holder;
}

/** Waits until `predicate` holds (polling), or fails after `ms`. */
export async function eventually(predicate: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
