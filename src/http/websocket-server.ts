/**
 * The websocket transport: graphql-ws on the HTTP server's /graphql path. Identity is checked
 * once at connection_init (identify: no token 4401, a bad one 4403) and the socket is closed when
 * the token expires; operations per socket are capped; each operation passes the same limits as
 * HTTP before it runs; a consumer that does not read its events is dropped. A browser origin the
 * CORS policy refuses (src/http/cors.ts) is refused at the upgrade with 403.
 */
import type http from 'node:http';
import { GraphQLError, getOperationAST, type ExecutionArgs, type GraphQLSchema, type GraphQLFormattedError } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { keepSocketsAlive } from './keep-alive';
import { sharedSubscribe } from './shared-subscribe';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import type { Identity } from '../common/auth/jwt';
import type { Identify } from '../common/auth/identify';
import { clientAddressOf } from '../common/limits/client-address';
import type { OperationGate } from '../common/limits/operation-gate';
import { callerOf } from '../common/limits/rate-limits';
import type { Config } from '../config';
import { buildContext, type Context } from '../context';
import type { Services } from '../services';
import { corsPolicy, requestOrigin } from './cors';

type WsExtra = {
  identity?: Identity;
  expiryTimer?: NodeJS.Timeout;
  /** The account this socket counts against (set once it was accepted). */
  counted?: string;
  /** Operations running on this socket. */
  operations?: Set<string>;
  /** The client address (common/limits/client-address.ts). */
  address?: string;
};

/** WebSocket payloads above this are refused by ws itself (close 1009). */
export const WS_MAX_PAYLOAD = 64 * 1024;
const DAY_MS = 24 * 3600 * 1000;

export interface WebSocketDeps {
  httpServer: http.Server;
  schema: GraphQLSchema;
  config: Config;
  services: Services;
  identify: Identify;
  gate: OperationGate;
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  log: Logger;
}

export function createWebSocketServer(deps: WebSocketDeps): { wsServer: WebSocketServer; cleanup: { dispose(): void | Promise<void> } } {
  const { httpServer, schema, config, services, gate, formatError, log } = deps;
  const { metrics } = services;
  /** Operations that became streams (subscriptions that started): their results are events. */
  const streams = new WeakSet<ExecutionArgs>();
  /** Sockets past connection_init, for the operations gauge (read at scrape: an operation whose socket closed is gone with it). */
  const sockets = new Set<WsExtra>();
  const perAccount = new Map<string, number>();
  const operationOf = (args: ExecutionArgs) => getOperationAST(args.document, args.operationName)?.name?.value ?? args.operationName;
  const origins = corsPolicy(config);
  const addressOf = clientAddressOf(config.trustProxyHops);
  const wsServer = new WebSocketServer({
    server: httpServer,
    path: '/graphql',
    maxPayload: WS_MAX_PAYLOAD,
    // The HTTP policy for browser origins: a page from an origin it refuses gets 403 before the socket opens.
    verifyClient: ({ req }, done) => {
      if (origins.allows(req.headers.origin, requestOrigin(req))) return done(true);
      log.debug({ origin: req.headers.origin }, 'refused a websocket from an origin not allowed');
      done(false, 403, 'Forbidden: origin not allowed');
    },
  });
  // One execution per event for all subscribers of one operation and caller (shared-subscribe.ts).
  const subscribe = sharedSubscribe((c) => {
    const id = (c as Context | undefined)?.identity;
    return id && config.wsSharedExecution ? `${id.role}:${id.sub}` : undefined;
  });
  const wsCleanup = useServer<Record<string, unknown> | undefined, WsExtra>(
    {
      schema,
      subscribe,
      connectionInitWaitTimeout: config.wsInitTimeoutMs,
      onConnect: async (ctx) => {
        const who = await deps.identify(ctx.connectionParams?.authorization);
        if ('anonymous' in who) {
          ctx.extra.socket.close(CloseCode.Unauthorized, 'Unauthorized: send { authorization: "Bearer <jwt>" }');
          return false;
        }
        if ('refused' in who) return false; // 4403 Forbidden
        const identity = who.identity;
        // Sockets per account are bounded (each holds memory and a share of every event's fan-out).
        const open = perAccount.get(identity.sub) ?? 0;
        if (open >= config.wsMaxSocketsPerAccount) {
          ctx.extra.socket.close(4429, `Too many sockets for this account: at most ${config.wsMaxSocketsPerAccount}`);
          return false;
        }
        perAccount.set(identity.sub, open + 1);
        ctx.extra.counted = identity.sub;
        ctx.extra.identity = identity;
        ctx.extra.address = addressOf(ctx.extra.request);
        // The upgrade request (headers, raw headers, their strings) is not needed past this point:
        // graphql-ws would keep it for the socket's life (about 1.5 KiB per socket).
        (ctx.extra as { request?: unknown }).request = undefined;
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
        sockets.add(ctx.extra);
        return true;
      },
      onClose: (ctx) => {
        if (ctx.extra.expiryTimer) clearTimeout(ctx.extra.expiryTimer);
        const sub = ctx.extra.counted;
        if (sub !== undefined) {
          const left = (perAccount.get(sub) ?? 1) - 1;
          if (left > 0) perAccount.set(sub, left);
          else perAccount.delete(sub);
        }
        sockets.delete(ctx.extra);
      },
      context: (ctx) =>
        buildContext(services, ctx.extra.identity, ctx.extra.address, () => {
          log.warn({ sub: ctx.extra.identity?.sub }, 'dropping a websocket subscriber that does not keep up');
          ctx.extra.socket.terminate();
        }),
      onSubscribe: async (ctx, id, payload) => {
        const operations = (ctx.extra.operations ??= new Set());
        if (operations.size >= config.wsMaxSubscriptions) {
          return [new GraphQLError(`At most ${config.wsMaxSubscriptions} operations at a time on one connection`, { extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' } })];
        }
        const checked = gate.check(payload.query, payload.variables ?? undefined, payload.operationName);
        if ('errors' in checked) return [...checked.errors];
        operations.add(id); // before the await: the cap holds for operations sent together
        // A subscription counts against its caller's subscribe limits (mutations count as they run).
        const caller = getOperationAST(checked.document, payload.operationName)?.operation === 'subscription' ? callerOf(ctx.extra) : undefined;
        if (caller) {
          try {
            await services.rateLimits.take('subscribe', caller);
          } catch (e) {
            operations.delete(id);
            if (e instanceof GraphQLError) return [e];
            throw e;
          }
        }
        return { schema, document: checked.document, variableValues: payload.variables, operationName: payload.operationName } as ExecutionArgs;
      },
      onComplete: (ctx, id) => {
        ctx.extra.operations?.delete(id);
      },
      onOperation: (_ctx, _id, _payload, args, result) => {
        // A subscription that started counts as one operation answered; a query's result counts in onNext.
        if (Symbol.asyncIterator in result) {
          streams.add(args);
          metrics.graphqlRequest('ws', operationOf(args));
        }
      },
      // Refused before it ran (the gate, too many operations): one operation answered; a stream that failed: its errors.
      onError: (ctx, id, payload, errors) => {
        if (ctx.extra.operations?.has(id)) metrics.graphqlErrors('ws', payload.operationName, errors);
        else metrics.graphqlRequest('ws', payload.operationName, errors);
      },
      onNext: (ctx, _id, _payload, args, result) => {
        const socket = ctx.extra.socket;
        if (socket.bufferedAmount > config.wsMaxBufferedBytes) {
          // A consumer that does not read: drop it rather than let its buffer grow.
          log.warn({ buffered: socket.bufferedAmount, sub: ctx.extra.identity?.sub }, 'closing a slow websocket consumer');
          socket.terminate();
          return;
        }
        const errors = result.errors?.length ? result.errors.map((e) => formatError(e.toJSON(), e)) : undefined;
        if (!streams.has(args)) metrics.graphqlRequest('ws', operationOf(args), errors);
        else {
          metrics.eventSent(args.contextValue as object);
          metrics.graphqlErrors('ws', operationOf(args), errors);
        }
        if (!errors) return result;
        return { ...result, errors } as unknown as typeof result;
      },
    },
    wsServer,
    0, // keep-alive: one timer for all sockets (keep-alive.ts) instead of graphql-ws's one per socket
  );
  const keepAlive = keepSocketsAlive(wsServer, config.wsKeepAliveMs);
  metrics.watchWebSockets(() => wsServer.clients.size, () => [...sockets].reduce((n, s) => n + (s.operations?.size ?? 0), 0));
  return {
    wsServer,
    cleanup: {
      dispose: () => {
        keepAlive.stop();
        return wsCleanup.dispose();
      },
    },
  };
}
