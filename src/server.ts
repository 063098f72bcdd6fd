/**
 * One http.Server: express 5 with Apollo Server 5 at /graphql, graphql-ws on the same path,
 * /healthz and /readyz. createServer() is used by main.ts and by the tests.
 */
import { migrate } from './common/db/migrate';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import { WebSocketServer } from 'ws';
import { createDataSource } from '../ormconfig';
import { bearerToken, createTokenVerifier, InvalidTokenError, type Identity } from './common/auth/jwt';
import { Clock } from './common/clock';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './common/db/embedded-postgres';
import { unauthenticated } from './common/errors/graphql-errors';
import { createErrorFormatter } from './common/errors/format-error';
import { EventBus } from './common/events/event-bus';
import { checkCost, limitRules, MAX_DOCUMENT_TOKENS, parseOperation, precheckMiddleware, validateOperation, type Limits } from './common/limits/operation-limits';
import { createLogger } from './common/logger';
import type { Config } from './config';
import { buildContext, type Context } from './context';
import { buildAppSchema } from './schema';
import { createServices, type Services } from './services';
import { stripeWebhook } from './modules/billing/stripe-webhook';

export interface RunningServer {
  url: string;
  wsUrl: string;
  port: number;
  databaseUrl: string;
  services: Services;
  httpServer: http.Server;
  /** Open websocket connections on this instance. */
  wsConnections(): number;
  /** Graceful stop: stop accepting, finish requests in flight, close sockets, pool, database. */
  stop(): Promise<void>;
}

type WsExtra = {
  identity?: Identity;
  expiryTimer?: NodeJS.Timeout;
  /** Operations running on this socket. */
  operations?: Set<string>;
};

/** WebSocket payloads above this are refused by ws itself (close 1009). */
export const WS_MAX_PAYLOAD = 64 * 1024;
const DAY_MS = 24 * 3600 * 1000;

async function openDatabase(config: Config, log: Logger): Promise<{ db: DataSource; url: string; embedded?: EmbeddedDatabase }> {
  let embedded: EmbeddedDatabase | undefined;
  let url = config.databaseUrl;
  if (!url) {
    embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort, database: 'credits', log });
    url = embedded.url;
    log.info({ dataDir: config.dataDir, port: embedded.port }, 'embedded PostgreSQL is up');
  }
  const db = createDataSource(url, config.dbPoolSize);
  try {
    await db.initialize();
    const applied = await migrate(db);
    if (applied.functions.length || applied.migrations.length) log.info(applied, 'database functions and migrations applied');
  } catch (e) {
    if (db.isInitialized) await db.destroy().catch(() => undefined);
    await embedded?.stop();
    throw e;
  }
  return { db, url, embedded };
}

export async function createServer(config: Config, log: Logger = createLogger(config.logLevel)): Promise<RunningServer> {
  const { db, url: databaseUrl, embedded } = await openDatabase(config, log);
  const clock = new Clock(config.testClock, config.clockStart);
  const events = new EventBus(databaseUrl, log);
  await events.start();
  const services = createServices({ config, db, clock, log, events });
  if (config.testClock) await services.testClock.load();
  services.runners.start();
  const verify = createTokenVerifier({ secret: config.jwtSecret, jwksUrl: config.jwtJwksUrl });
  const schema = await buildAppSchema();
  const limits: Limits = { maxDepth: config.maxQueryDepth, maxCost: config.maxQueryCost, introspection: !config.production };
  const formatError = createErrorFormatter(config.production, log);

  const app = express();
  app.disable('x-powered-by');
  const httpServer = http.createServer(app);

  const wsServer = new WebSocketServer({ server: httpServer, path: '/graphql', maxPayload: WS_MAX_PAYLOAD });
  const wsCleanup = useServer<Record<string, unknown> | undefined, WsExtra>(
    {
      schema,
      connectionInitWaitTimeout: config.wsInitTimeoutMs,
      onConnect: async (ctx) => {
        let token: string | undefined;
        try {
          token = bearerToken(ctx.connectionParams?.authorization);
        } catch {
          return false;
        }
        if (!token) {
          ctx.extra.socket.close(CloseCode.Unauthorized, 'Unauthorized: send { authorization: "Bearer <jwt>" }');
          return false;
        }
        try {
          const identity = await verify(token);
          ctx.extra.identity = identity;
          if (identity.exp) {
            const closeAtExpiry = () => {
              const ms = identity.exp! * 1000 - Date.now();
              if (ms <= 0) return ctx.extra.socket.close(CloseCode.Forbidden, 'Forbidden: token expired');
              // Timers hold at most 2^31-1 ms; a far expiry is re-checked daily.
              ctx.extra.expiryTimer = setTimeout(closeAtExpiry, Math.min(ms, DAY_MS));
              ctx.extra.expiryTimer.unref();
            };
            closeAtExpiry();
          }
          return true;
        } catch {
          return false; // 4403 Forbidden
        }
      },
      onClose: (ctx) => {
        if (ctx.extra.expiryTimer) clearTimeout(ctx.extra.expiryTimer);
      },
      context: (ctx) =>
        buildContext(services, ctx.extra.identity, () => {
          log.warn({ sub: ctx.extra.identity?.sub }, 'dropping a websocket subscriber that does not keep up');
          ctx.extra.socket.terminate();
        }),
      onSubscribe: (ctx, id, payload) => {
        const operations = (ctx.extra.operations ??= new Set());
        if (operations.size >= config.wsMaxSubscriptions) {
          return [new GraphQLError(`At most ${config.wsMaxSubscriptions} operations at a time on one connection`, { extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' } })];
        }
        const document = parseOperation(payload.query);
        if (document instanceof GraphQLError) return [document];
        const errors = validateOperation(schema, document, payload.variables ?? undefined, payload.operationName, limits);
        if (errors.length) return errors;
        operations.add(id);
        return { schema, document, variableValues: payload.variables, operationName: payload.operationName } as ExecutionArgs;
      },
      onComplete: (ctx, id) => {
        ctx.extra.operations?.delete(id);
      },
      onNext: (ctx, _id, _payload, _args, result) => {
        const socket = ctx.extra.socket;
        if (socket.bufferedAmount > config.wsMaxBufferedBytes) {
          // A consumer that does not read: drop it rather than let its buffer grow.
          log.warn({ buffered: socket.bufferedAmount, sub: ctx.extra.identity?.sub }, 'closing a slow websocket consumer');
          socket.terminate();
          return;
        }
        if (!result.errors?.length) return result;
        return { ...result, errors: result.errors.map((e) => formatError(e.toJSON(), e)) } as unknown as typeof result;
      },
    },
    wsServer,
  );

  const limitsPlugin: ApolloServerPlugin<Context> = {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, request, operationName }) {
          const refusal = checkCost(schema, document, request.variables, operationName, limits.maxCost);
          if (refusal) throw refusal;
        },
      };
    },
  };

  const apollo = new ApolloServer<Context>({
    schema,
    introspection: !config.production,
    hideSchemaDetailsFromClientErrors: config.production, // no "Did you mean …" hints without introspection
    parseOptions: { maxTokens: MAX_DOCUMENT_TOKENS },
    csrfPrevention: true,
    allowBatchedHttpRequests: false,
    stopOnTerminationSignals: false, // main.ts owns shutdown order
    includeStacktraceInErrorResponses: !config.production,
    validationRules: limitRules(limits),
    formatError,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: config.shutdownTimeoutMs }),
      {
        async serverWillStart() {
          return {
            async drainServer() {
              await wsCleanup.dispose();
            },
          };
        },
      },
      limitsPlugin,
    ],
  });
  await apollo.start();

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await Promise.race([
        db.query('SELECT 1'),
        new Promise((_r, reject) => setTimeout(() => reject(new Error('database timeout')), 2000).unref()),
      ]);
      res.json({ status: 'ready' });
    } catch (e) {
      res.status(503).json({ status: 'unavailable', reason: 'database does not answer' });
    }
  });
  // Stripe signs the raw body: this route reads it unparsed.
  app.post('/webhooks/stripe', express.raw({ type: () => true, limit: '1mb' }), stripeWebhook(services, log));
  app.use(
    '/graphql',
    express.json({ limit: '256kb' }),
    precheckMiddleware(schema, limits),
    expressMiddleware(apollo, {
      context: async ({ req }) => {
        let identity: Identity | undefined;
        try {
          const token = bearerToken(req.headers.authorization);
          if (token) identity = await verify(token);
        } catch (e) {
          throw unauthenticated(e instanceof InvalidTokenError ? e.message : 'The token is invalid');
        }
        return buildContext(services, identity);
      },
    }),
  );

  // Bodies express could not read (not JSON, too large, bad charset): a GraphQL-shaped JSON
  // refusal, never express's HTML page with the stack.
  app.use((err: { type?: string; status?: number }, _req: express.Request, res: express.Response, next: express.NextFunction) => {
    if (res.headersSent) return next(err);
    const status = typeof err?.status === 'number' && err.status >= 400 && err.status < 500 ? err.status : 500;
    const messages: Record<string, string> = {
      'entity.parse.failed': 'The request body is not valid JSON',
      'entity.too.large': 'The request body is too large',
      'encoding.unsupported': 'The request body encoding is not supported',
      'charset.unsupported': 'The request body charset is not supported',
    };
    if (status === 500) log.error({ err }, 'internal error before GraphQL');
    res.status(status).json({
      errors: [{ message: status === 500 ? 'Internal server error' : (messages[err?.type ?? ''] ?? 'Bad request'), extensions: { code: status === 500 ? 'INTERNAL_SERVER_ERROR' : 'BAD_REQUEST' } }],
    });
  });

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, () => resolve());
  });
  const port = (httpServer.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await apollo.stop(); // stops accepting, drains HTTP requests in flight, closes websockets
      wsServer.close();
      await services.runners.stop();
      await events.stop();
      await db.destroy();
      await embedded?.stop();
    })());

  return {
    url: `${base}/graphql`,
    wsUrl: `ws://127.0.0.1:${port}/graphql`,
    port,
    databaseUrl,
    services,
    httpServer,
    wsConnections: () => wsServer.clients.size,
    stop,
  };
}
