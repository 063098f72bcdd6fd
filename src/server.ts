/**
 * One instance: its database (opened and migrated), its services and background runners, one
 * http.Server carrying the HTTP routes (express 5 + Apollo Server 5 at /graphql) and graphql-ws on
 * the same path, and an ordered stop. createServer() is used by main.ts and by the tests. The
 * parts: src/http/routes.ts, src/http/apollo.ts, src/http/websocket-server.ts; both transports
 * identify callers with one identify() and pass operations through one OperationGate.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Logger } from 'pino';
import { createIdentify } from './common/auth/identify';
import { createTokenVerifier } from './common/auth/jwt';
import { Clock } from './common/clock';
import { openDatabase } from './common/db/open-database';
import { createErrorFormatter } from './common/errors/format-error';
import { EventBus } from './common/events/event-bus';
import { OperationGate } from './common/limits/operation-gate';
import { Metrics, metricsHandler, type PoolCounts } from './common/metrics/metrics';
import { createLogger } from './common/logger';
import type { Config } from './config';
import { createApollo } from './http/apollo';
import { mountRoutes } from './http/routes';
import { createWebSocketServer } from './http/websocket-server';
import { buildAppSchema } from './schema';
import { createServices, type Services } from './services';

export { WS_MAX_PAYLOAD } from './http/websocket-server';

export interface RunningServer {
  url: string;
  wsUrl: string;
  port: number;
  databaseUrl: string;
  services: Services;
  httpServer: http.Server;
  /** Where this instance serves GET /metrics (the API's port, or METRICS_PORT). */
  metricsUrl: string;
  /** Open websocket connections on this instance. */
  wsConnections(): number;
  /** Graceful stop: stop accepting, finish requests in flight, close sockets, pool, database. */
  stop(): Promise<void>;
}

export async function createServer(config: Config, log: Logger = createLogger(config.logLevel)): Promise<RunningServer> {
  const { db, url: databaseUrl, ownerUrl, events: transport, embedded } = await openDatabase(config, log);
  const clock = new Clock(config.testClock, config.clockStart);
  const events = new EventBus(databaseUrl, log, transport === 'logical' ? { ownerUrl } : undefined);
  await events.start();
  const metrics = new Metrics();
  metrics.watchPool(() => (db.driver as unknown as { master?: PoolCounts }).master);
  const services = createServices({ config, db, clock, log, events, metrics });
  if (config.testClock) await services.testClock.load();
  services.runners.start();
  const identify = createIdentify(createTokenVerifier({ secret: config.jwtSecret, jwksUrl: config.jwtJwksUrl, issuer: config.jwtIssuer, audience: config.jwtAudience, maxLifetimeSeconds: config.jwtMaxLifetimeSeconds }));
  const schema = await buildAppSchema();
  const gate = new OperationGate(schema, { maxDepth: config.maxQueryDepth, maxCost: config.maxQueryCost, maxMutations: config.maxMutationsPerRequest, introspection: !config.production });
  const formatError = createErrorFormatter(config.production, log);

  const app = express();
  app.disable('x-powered-by');
  const httpServer = http.createServer(app);
  const { wsServer, cleanup: wsCleanup } = createWebSocketServer({ httpServer, schema, config, services, identify, gate, formatError, log });
  const apollo = await createApollo({ httpServer, schema, config, gate, formatError, wsCleanup, metrics });
  mountRoutes(app, { db, services, apollo, identify, gate, log });

  await listen(httpServer, config.port, config.host);
  const port = (httpServer.address() as AddressInfo).port;
  // METRICS_PORT: GET /metrics on a port of its own instead (routes.ts leaves it off the API's).
  const serveMetrics = metricsHandler(metrics);
  const metricsServer = config.metricsPort
    ? http.createServer((req, res) => (req.method === 'GET' && req.url?.split('?')[0] === '/metrics' ? serveMetrics(req, res) : res.writeHead(404).end()))
    : undefined;
  if (metricsServer) await listen(metricsServer, config.metricsPort, config.host);
  const base = `http://127.0.0.1:${port}`;

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await apollo.stop(); // stops accepting, drains HTTP requests in flight, closes websockets
      wsServer.close();
      await services.runners.stop();
      await events.stop();
      metricsServer?.close();
      metricsServer?.closeAllConnections();
      await db.destroy();
      await embedded?.stop();
    })());

  return {
    url: `${base}/graphql`,
    wsUrl: `ws://127.0.0.1:${port}/graphql`,
    port,
    metricsUrl: `http://127.0.0.1:${config.metricsPort || port}/metrics`,
    databaseUrl,
    services,
    httpServer,
    wsConnections: () => wsServer.clients.size,
    stop,
  };
}

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}
