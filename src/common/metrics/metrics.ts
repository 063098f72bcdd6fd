/**
 * The metrics of one server instance, in its own prom-client registry (never the library's
 * global one: several instances may run in one process), served as Prometheus text at
 * GET /metrics. Names and what to alert on: docs/OPERATIONS.md, "Metrics and what to alert on".
 *
 * prom-client's default metrics (CPU, memory, event loop, GC) describe the process, not an
 * instance: they are collected once per process, in a registry of their own (also not the global
 * one), and follow each instance's metrics in its scrape. Their collectors cannot be stopped (a GC
 * observer, an event-loop timer), so one set per instance would keep every stopped instance alive.
 *
 * Operation names come from clients: a label takes a GraphQL name only, and at most
 * MAX_OPERATION_NAMES distinct ones; the rest count as "other".
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export type Transport = 'http' | 'ws';

/** An error as it is sent (formatted): its code is `extensions.code`. */
export interface SentError {
  extensions?: { [key: string]: unknown; code?: unknown };
}

/** The pg Pool's counts (read at each scrape). */
export interface PoolCounts {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
  options?: { max?: number };
}

export const SWEEP_KINDS = ['leases', 'renewals', 'expiries', 'intents', 'retention', 'expiryWarnings', 'autoTopUps'] as const;
export type SweepKind = (typeof SWEEP_KINDS)[number];

/** The operation of a request refused before its document was read (label "unknown"). */
export const NOT_READ = Symbol('operation not read');

const MAX_OPERATION_NAMES = 200;
const GRAPHQL_NAME = /^[_A-Za-z][_0-9A-Za-z]{0,99}$/;

export class Metrics {
  readonly registry = new Registry();
  private readonly operationNames = new Set<string>();
  /** Per websocket operation: when the bus received the event it is about to send. */
  private readonly pendingEvents = new WeakMap<object, number>();

  private readonly requests = new Counter({
    name: 'credits_graphql_requests_total',
    help: 'GraphQL operations answered, by transport, operation name ("anonymous", "unknown" when refused before the operation was read) and the code of the first error sent ("OK" for none). A websocket subscription counts once, when it starts or is refused',
    labelNames: ['transport', 'operation', 'code'],
    registers: [this.registry],
  });
  private readonly errors = new Counter({
    name: 'credits_graphql_errors_total',
    help: 'GraphQL errors sent, each counted by transport, operation and its extensions.code as sent (INTERNAL_SERVER_ERROR when it has none), subscription events included',
    labelNames: ['transport', 'operation', 'code'],
    registers: [this.registry],
  });
  private readonly starts = new Counter({
    name: 'credits_generation_starts_total',
    help: 'Generation starts decided on this instance: "ACCEPTED" (debited and queued) or the userErrors code of the refusal (replays of a kept idempotency key are not counted again)',
    labelNames: ['code'],
    registers: [this.registry],
  });
  private readonly startBatches = new Histogram({
    name: 'credits_generation_start_batch_size',
    help: 'Generation starts per database statement (one batch, one commit)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [this.registry],
  });
  private readonly eventLag = new Histogram({
    name: 'credits_event_lag_seconds',
    help: 'Seconds from this instance receiving an event\'s notification (PostgreSQL delivers it at commit; events carry no commit time) to sending it to a websocket subscriber',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  private readonly sweepRuns = new Counter({
    name: 'credits_sweep_runs_total',
    help: 'Runs of the timed work (every JOB_SWEEP_INTERVAL_MS), by kind: leases (expired job leases), renewals, expiries (credit lots), intents (payment reconciliation)',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  private readonly sweepFailures = new Counter({
    name: 'credits_sweep_failures_total',
    help: 'Runs of the timed work that failed, by kind (the error is logged)',
    labelNames: ['kind'],
    registers: [this.registry],
  });

  constructor() {
    for (const kind of SWEEP_KINDS) {
      this.sweepRuns.inc({ kind }, 0);
      this.sweepFailures.inc({ kind }, 0);
    }
    this.starts.inc({ code: 'ACCEPTED' }, 0);
  }

  /** One GraphQL operation answered, with the errors it sent (formatted). */
  graphqlRequest(transport: Transport, operationName: unknown, errors?: readonly SentError[]): void {
    const operation = this.operation(operationName);
    this.requests.inc({ transport, operation, code: errors?.length ? codeOf(errors[0]) : 'OK' });
    this.graphqlErrors(transport, operation, errors);
  }

  /** Errors sent after the operation was counted (a subscription's events, a stream that failed). */
  graphqlErrors(transport: Transport, operationName: unknown, errors?: readonly SentError[]): void {
    if (!errors?.length) return;
    const operation = this.operation(operationName);
    for (const e of errors) this.errors.inc({ transport, operation, code: codeOf(e) });
  }

  /** A generation start decided: accepted (no code) or refused with `code`. */
  generationStart(code?: string): void {
    this.starts.inc({ code: code ?? 'ACCEPTED' });
  }

  generationStartBatch(size: number): void {
    this.startBatches.observe(size);
  }

  /** Open websocket connections and the operations running on them, read at each scrape. */
  watchWebSockets(connections: () => number, operations: () => number): void {
    new Gauge({ name: 'credits_ws_connections', help: 'Open websocket connections on this instance', registers: [this.registry], collect() { this.set(connections()); } });
    new Gauge({
      name: 'credits_ws_subscriptions',
      help: 'Operations running on this instance\'s websockets (subscriptions, and queries or mutations while they run): what WS_MAX_SUBSCRIPTIONS caps per socket',
      registers: [this.registry],
      collect() {
        this.set(operations());
      },
    });
  }

  /** The database pool's connections, read at each scrape. */
  watchPool(pool: () => PoolCounts | undefined): void {
    const gauge = (name: string, help: string, value: (p: PoolCounts) => number | undefined) =>
      new Gauge({ name, help, registers: [this.registry], collect() { const p = pool(); const v = p && value(p); if (v !== undefined) this.set(v); } });
    gauge('credits_db_pool_connections_in_use', 'Pool connections running a query or transaction', (p) => p.totalCount - p.idleCount);
    gauge('credits_db_pool_connections_idle', 'Pool connections open and idle', (p) => p.idleCount);
    gauge('credits_db_pool_waiting', 'Queries waiting for a pool connection (all DB_POOL_SIZE are in use)', (p) => p.waitingCount);
    gauge('credits_db_pool_connections_max', 'The pool\'s size (DB_POOL_SIZE)', (p) => p.options?.max);
  }

  /**
   * The event a websocket operation (`op`: its context) takes next from its subscription, with
   * when the bus received it (undefined: not from the bus, e.g. the current value read first).
   */
  private eventTaken(op: object, receivedAt: number | undefined): void {
    if (receivedAt === undefined) this.pendingEvents.delete(op);
    else this.pendingEvents.set(op, receivedAt);
  }

  /** `op` is sending a result now: the lag of the event it took, if it took one. */
  eventSent(op: object): void {
    const at = this.pendingEvents.get(op);
    if (at === undefined) return;
    this.pendingEvents.delete(op);
    this.eventLag.observe((performance.now() - at) / 1000);
  }

  /** Runs one kind of timed work, counting the run and its failure (rethrown). */
  async sweep<T>(kind: SweepKind, run: () => Promise<T>): Promise<T> {
    this.sweepRuns.inc({ kind });
    try {
      return await run();
    } catch (e) {
      this.sweepFailures.inc({ kind });
      throw e;
    }
  }

  /** Follows the events an operation takes from `source` (see eventTaken). */
  taking<T>(op: object, source: AsyncIterableIterator<T>, receivedAt: (e: T) => number | undefined): AsyncIterableIterator<T> {
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      next: async () => {
        const r = await source.next();
        if (!r.done) this.eventTaken(op, receivedAt(r.value));
        return r;
      },
      return: async () => (await source.return?.()) ?? { value: undefined, done: true },
    };
  }

  /** The scrape: this instance's metrics, then the process's. */
  async text(): Promise<string> {
    return (await this.registry.metrics()) + (await processRegistry().metrics());
  }

  private operation(name: unknown): string {
    if (name === NOT_READ) return 'unknown';
    if (name === undefined || name === null || name === '') return 'anonymous';
    if (typeof name !== 'string' || !GRAPHQL_NAME.test(name)) return 'other';
    if (this.operationNames.has(name)) return name;
    if (this.operationNames.size >= MAX_OPERATION_NAMES) return 'other';
    this.operationNames.add(name);
    return name;
  }
}

/** GET /metrics, for the API's express app or the METRICS_PORT server: Prometheus text. */
export function metricsHandler(metrics: Metrics): (req: IncomingMessage, res: ServerResponse) => void {
  return (_req, res) => {
    metrics.text().then(
      (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' }).end(body),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
    );
  };
}

let processMetrics: Registry | undefined;

function processRegistry(): Registry {
  if (!processMetrics) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics });
  }
  return processMetrics;
}

function codeOf(e: SentError): string {
  const code = e.extensions?.code;
  return typeof code === 'string' && code ? code : 'INTERNAL_SERVER_ERROR';
}
