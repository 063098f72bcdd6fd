/**
 * Every environment variable the service reads, parsed and validated in one place.
 * A bad value stops the start with a message naming the variable and what it accepts.
 */
import path from 'node:path';
import type { RateLimitSettings } from './common/limits/rate-limits';

export type PaymentProviderName = 'sandbox' | 'stripe';

export interface Config {
  nodeEnv: string;
  production: boolean;
  port: number;
  host: string;
  /** External PostgreSQL; undefined means the embedded database under dataDir. */
  databaseUrl?: string;
  /** The owner's connection for migrations (DATABASE_OWNER_URL); undefined: migrations use databaseUrl. */
  databaseOwnerUrl?: string;
  dataDir: string;
  /** Port of the embedded PostgreSQL; 0 picks a free one at each start. */
  embeddedPgPort: number;
  dbPoolSize: number;
  /** How long a statement of the service waits for a row lock (an account held by another change) before it gives up. */
  dbLockTimeoutMs: number;
  /** The longest a statement of the service may run. */
  dbStatementTimeoutMs: number;
  /** Mutations of one account waiting in memory on one instance (beyond it: RATE_LIMITED). */
  accountQueueMax: number;
  /** Limits per account and per client address, shared by the instances (common/limits/rate-limits.ts); 0 turns one off. */
  rateLimits: RateLimitSettings;
  /** Proxy hops in front of the service whose X-Forwarded-For is trusted for the client address (0: the socket's peer). */
  trustProxyHops: number;
  jwtSecret?: string;
  jwtJwksUrl?: string;
  /** Checked against the token's `iss` when set (required in production with jwtJwksUrl). */
  jwtIssuer?: string;
  /** Checked against the token's `aud` when set (required in production with jwtJwksUrl). */
  jwtAudience?: string;
  /** The longest lifetime (exp − iat, or exp − now without iat) a token may have. */
  jwtMaxLifetimeSeconds: number;
  /** True when the secret is the development secret kept in dataDir (set by main.ts; never in production). */
  jwtSecretGenerated: boolean;
  /** Origins (normalised, e.g. https://app.example.com) allowed to call /graphql from a browser, besides the same origin. */
  corsOrigins: string[];
  paymentProvider: PaymentProviderName;
  stripe?: { secretKey: string; webhookSecret: string; successUrl: string; cancelUrl: string; apiBase?: string };
  simulatedWorker: boolean;
  /** Jobs the simulated worker runs at a time, and how long each of its two steps takes. */
  simulatedWorkerConcurrency: number;
  simulatedWorkerStepMs: number;
  testClock: boolean;
  /** Development and tests: the clock starts from this instant instead of the real time (and runs on from it). */
  clockStart?: Date;
  jobLeaseSeconds: number;
  /** A payment intent left open this long (a crash, a lost answer) is driven again by the reconciler. */
  intentReconcileAfterSeconds: number;
  /** Tests only: the process kills itself at this step of a payment intent (<kind>:committed|called|completed). */
  faultKillAt?: string;
  jobSweepIntervalMs: number;
  startConcurrency: number;
  startBatchMax: number;
  quoteTtlSeconds: number;
  /** Quotes no job was started from are deleted this long after they expire. */
  quoteRetentionHours: number;
  /** The replay window: idempotency records are deleted this long after they were written (24 h at least). */
  idempotencyRetentionHours: number;
  maxQueryDepth: number;
  maxQueryCost: number;
  /** Mutations (root fields, aliases included) one request may carry. */
  maxMutationsPerRequest: number;
  logLevel: string;
  shutdownTimeoutMs: number;
  wsInitTimeoutMs: number;
  /** Each websocket is pinged this often; one that has not answered by its next ping is dropped (0: no pings). */
  wsKeepAliveMs: number;
  wsMaxSubscriptions: number;
  /** Open websockets of one account on an instance. */
  wsMaxSocketsPerAccount: number;
  wsMaxBufferedBytes: number;
  /** How live events travel (common/events/event-transport.ts): pg_notify (the default for now), logical decoding messages (logical; auto: where the database allows). */
  eventsTransport: 'auto' | 'notify' | 'logical';
  /** Run a live event's selection once for all subscribers of one operation and caller (src/http/shared-subscribe.ts); off only to measure what it saves. */
  wsSharedExecution: boolean;
  /** Serve GET /metrics on this port instead of the API's (0: on the API's port). */
  metricsPort: number;
}

export class ConfigError extends Error {
  constructor(variable: string, accepts: string, got: string) {
    super(`Invalid ${variable}=${JSON.stringify(got)}: ${accepts}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function int(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = str(env, name);
  if (raw === undefined) return def;
  if (!/^-?\d+$/.test(raw)) throw new ConfigError(name, `accepts a whole number from ${min} to ${max}`, raw);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(name, `accepts a whole number from ${min} to ${max}`, raw);
  }
  return n;
}

function flag(env: Env, name: string, def: boolean): boolean {
  const raw = str(env, name);
  if (raw === undefined) return def;
  if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
  throw new ConfigError(name, 'accepts 1 or 0 (also true/false, yes/no, on/off)', raw);
}

function oneOf<T extends string>(env: Env, name: string, options: readonly T[], def: T): T {
  const raw = str(env, name);
  if (raw === undefined) return def;
  if (!(options as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `accepts one of ${options.join(', ')}`, raw);
  }
  return raw as T;
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, `accepts a URL starting with ${protocols.join(' or ')}`, raw);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `accepts a URL starting with ${protocols.join(' or ')}`, raw);
  }
  return raw;
}

/** Comma-separated exact origins (http or https, no path), normalised as browsers send them. */
function origins(env: Env, name: string): string[] {
  const raw = str(env, name);
  if (raw === undefined) return [];
  const accepts = 'accepts comma-separated origins such as https://app.example.com (http or https, a host and an optional port, no path)';
  const out: string[] = [];
  for (const item of raw.split(',').map((x) => x.trim()).filter((x) => x !== '')) {
    let parsed: URL;
    try {
      parsed = new URL(item);
    } catch {
      throw new ConfigError(name, accepts, item);
    }
    // No path, query, fragment, credentials or wildcard: an origin is compared exactly.
    const bare = /^https?:$/.test(parsed.protocol) && parsed.pathname === '/' && !/[?#@*]/.test(item);
    if (!bare) throw new ConfigError(name, accepts, item);
    if (!out.includes(parsed.origin)) out.push(parsed.origin);
  }
  return out;
}

/** An ISO 8601 instant with a date and a time, e.g. 2024-02-29T12:00:00Z. */
function instant(env: Env, name: string): Date | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  const d = new Date(raw);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(raw) || Number.isNaN(d.getTime())) {
    throw new ConfigError(name, 'accepts an ISO 8601 instant such as 2024-02-29T12:00:00Z', raw);
  }
  return d;
}

function required(env: Env, name: string, accepts: string): string {
  const v = str(env, name);
  if (!v) throw new ConfigError(name, `is required with PAYMENT_PROVIDER=stripe: ${accepts}`, '');
  return v;
}

function stripeSettings(env: Env): NonNullable<Config['stripe']> {
  return {
    secretKey: required(env, 'STRIPE_SECRET_KEY', 'your Stripe secret key (sk_...)'),
    webhookSecret: required(env, 'STRIPE_WEBHOOK_SECRET', "the webhook endpoint's signing secret (whsec_...)"),
    successUrl: url(env, 'CHECKOUT_SUCCESS_URL', ['https:', 'http:']) ?? 'http://localhost:3000/checkout/success',
    cancelUrl: url(env, 'CHECKOUT_CANCEL_URL', ['https:', 'http:']) ?? 'http://localhost:3000/checkout/cancel',
    apiBase: url(env, 'STRIPE_API_BASE', ['https:', 'http:']),
  };
}

export function loadConfig(env: Env = process.env): Config {
  const nodeEnv = str(env, 'NODE_ENV') ?? 'development';
  const production = nodeEnv === 'production';
  const databaseUrl = url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  const jwtSecretRaw = str(env, 'JWT_SECRET');
  if (jwtSecretRaw !== undefined && Buffer.byteLength(jwtSecretRaw, 'utf8') < 32) {
    // Never echoed, not even in part.
    throw new ConfigError('JWT_SECRET', 'accepts a secret of at least 32 bytes (e.g. openssl rand -base64 32)', '<hidden>');
  }
  const jwtJwksUrl = url(env, 'JWT_JWKS_URL', ['https:', 'http:']);
  if (jwtJwksUrl && new URL(jwtJwksUrl).protocol === 'http:' && !['127.0.0.1', 'localhost', '[::1]'].includes(new URL(jwtJwksUrl).hostname)) {
    // Keys fetched in the clear could be swapped on the way: https, except to this machine.
    throw new ConfigError('JWT_JWKS_URL', 'accepts an https:// URL (http:// only to 127.0.0.1, localhost or [::1])', jwtJwksUrl);
  }
  if (production && !jwtSecretRaw && !jwtJwksUrl) {
    throw new ConfigError('JWT_SECRET', 'is required when NODE_ENV=production (or set JWT_JWKS_URL)', '');
  }
  if (production && jwtJwksUrl) {
    // Without them, a token the identity provider minted for another application gets in.
    if (!str(env, 'JWT_ISSUER')) throw new ConfigError('JWT_ISSUER', "is required with JWT_JWKS_URL when NODE_ENV=production: the iss of your identity provider's tokens", '');
    if (!str(env, 'JWT_AUDIENCE')) throw new ConfigError('JWT_AUDIENCE', 'is required with JWT_JWKS_URL when NODE_ENV=production: the aud your identity provider puts in tokens for this service', '');
  }
  const testClock = flag(env, 'TEST_CLOCK', false);
  const paymentProvider = oneOf(env, 'PAYMENT_PROVIDER', ['sandbox', 'stripe'] as const, 'sandbox');
  if (production && str(env, 'PAYMENT_PROVIDER') !== 'stripe') {
    // One forgotten variable must not give every user free packs and plans.
    throw new ConfigError('PAYMENT_PROVIDER', 'must be set to stripe when NODE_ENV=production (sandbox is for development and tests only)', str(env, 'PAYMENT_PROVIDER') ?? '');
  }
  if (testClock && production) {
    throw new ConfigError('TEST_CLOCK', 'accepts only 0 when NODE_ENV=production', str(env, 'TEST_CLOCK') ?? '');
  }
  const faultKillAt = str(env, 'FAULT_KILL_AT');
  if (faultKillAt && (production || !/^[a-z_.]+:(committed|called|completed)$/.test(faultKillAt))) {
    throw new ConfigError('FAULT_KILL_AT', production ? 'must be unset when NODE_ENV=production' : 'accepts <intent kind>:committed|called|completed', faultKillAt);
  }
  const clockStart = instant(env, 'TEST_CLOCK_START');
  if (clockStart && production) {
    throw new ConfigError('TEST_CLOCK_START', 'must be unset when NODE_ENV=production', str(env, 'TEST_CLOCK_START') ?? '');
  }
  const port = int(env, 'PORT', 4000, 0, 65535);
  const metricsPort = int(env, 'METRICS_PORT', 0, 0, 65535);
  if (metricsPort !== 0 && metricsPort === port) {
    throw new ConfigError('METRICS_PORT', `accepts 0 (metrics on the API's port) or a port other than PORT=${port}`, String(metricsPort));
  }
  return {
    nodeEnv,
    production,
    port,
    host: str(env, 'HOST') ?? '0.0.0.0',
    databaseUrl,
    databaseOwnerUrl: url(env, 'DATABASE_OWNER_URL', ['postgres:', 'postgresql:']),
    dataDir: path.resolve(str(env, 'DATA_DIR') ?? './.data'),
    embeddedPgPort: int(env, 'EMBEDDED_PG_PORT', 0, 0, 65535),
    dbPoolSize: int(env, 'DB_POOL_SIZE', 20, 1, 500),
    dbLockTimeoutMs: int(env, 'DB_LOCK_TIMEOUT_MS', 5000, 100, 600_000),
    dbStatementTimeoutMs: int(env, 'DB_STATEMENT_TIMEOUT_MS', 15000, 100, 3_600_000),
    accountQueueMax: int(env, 'ACCOUNT_QUEUE_MAX', 500, 1, 100_000),
    rateLimits: {
      windowSeconds: int(env, 'RATE_LIMIT_WINDOW_SECONDS', 60, 1, 86_400),
      accountMutations: int(env, 'RATE_LIMIT_ACCOUNT_MUTATIONS', 600, 0, 100_000_000),
      addressMutations: int(env, 'RATE_LIMIT_ADDRESS_MUTATIONS', 3000, 0, 100_000_000),
      accountSubscribes: int(env, 'RATE_LIMIT_ACCOUNT_SUBSCRIBES', 300, 0, 100_000_000),
      addressSubscribes: int(env, 'RATE_LIMIT_ADDRESS_SUBSCRIBES', 1500, 0, 100_000_000),
      accountCancelsPerDay: int(env, 'RATE_LIMIT_ACCOUNT_CANCELS_PER_DAY', 2000, 0, 100_000_000),
    },
    trustProxyHops: int(env, 'TRUST_PROXY', 0, 0, 10),
    jwtSecret: jwtSecretRaw,
    jwtJwksUrl,
    jwtIssuer: str(env, 'JWT_ISSUER'),
    jwtAudience: str(env, 'JWT_AUDIENCE'),
    jwtMaxLifetimeSeconds: int(env, 'JWT_MAX_LIFETIME_SECONDS', 31 * 86400, 60, 366 * 86400),
    jwtSecretGenerated: false,
    corsOrigins: origins(env, 'CORS_ORIGINS'),
    paymentProvider,
    stripe: paymentProvider === 'stripe' ? stripeSettings(env) : undefined,
    simulatedWorker: flag(env, 'SIMULATED_WORKER', databaseUrl === undefined),
    simulatedWorkerConcurrency: int(env, 'SIMULATED_WORKER_CONCURRENCY', 1, 1, 256),
    simulatedWorkerStepMs: int(env, 'SIMULATED_WORKER_STEP_MS', 500, 0, 60_000),
    testClock,
    clockStart,
    jobLeaseSeconds: int(env, 'JOB_LEASE_SECONDS', 300, 5, 86400),
    intentReconcileAfterSeconds: int(env, 'INTENT_RECONCILE_AFTER_SECONDS', 120, 1, 86400),
    faultKillAt,
    jobSweepIntervalMs: int(env, 'JOB_SWEEP_INTERVAL_MS', 5000, 100, 3_600_000),
    startConcurrency: int(env, 'START_CONCURRENCY', 2, 1, 1000),
    startBatchMax: int(env, 'START_BATCH_MAX', 32, 1, 1000),
    quoteTtlSeconds: int(env, 'QUOTE_TTL_SECONDS', 600, 10, 86400),
    quoteRetentionHours: int(env, 'QUOTE_RETENTION_HOURS', 24, 1, 24 * 366),
    idempotencyRetentionHours: int(env, 'IDEMPOTENCY_RETENTION_HOURS', 72, 24, 24 * 366),
    maxQueryDepth: int(env, 'MAX_QUERY_DEPTH', 10, 2, 100),
    maxQueryCost: int(env, 'MAX_QUERY_COST', 5000, 10, 1_000_000),
    maxMutationsPerRequest: int(env, 'MAX_MUTATIONS_PER_REQUEST', 5, 1, 100),
    logLevel: oneOf(env, 'LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    shutdownTimeoutMs: int(env, 'SHUTDOWN_TIMEOUT_MS', 10000, 0, 600000),
    wsInitTimeoutMs: int(env, 'WS_INIT_TIMEOUT_MS', 3000, 100, 60000),
    wsKeepAliveMs: int(env, 'WS_KEEPALIVE_MS', 30000, 0, 600_000),
    wsMaxSubscriptions: int(env, 'WS_MAX_SUBSCRIPTIONS', 25, 1, 1000),
    wsMaxSocketsPerAccount: int(env, 'WS_MAX_SOCKETS_PER_ACCOUNT', 50, 1, 100_000),
    wsMaxBufferedBytes: int(env, 'WS_MAX_BUFFERED_BYTES', 1024 * 1024, 1024, 256 * 1024 * 1024),
    wsSharedExecution: flag(env, 'WS_SHARED_EXECUTION', true),
    // notify: where the API, not PostgreSQL's commits, is the limit, logical gains nothing (docs/PERFORMANCE.md).
    eventsTransport: oneOf(env, 'EVENTS_TRANSPORT', ['auto', 'notify', 'logical'] as const, 'notify'),
    metricsPort,
  };
}
