/**
 * The HTTP routes of an instance: /healthz, /readyz (200 only while the database answers within
 * 2 s), POST /webhooks/stripe (the raw body, for the signature), /graphql (Apollo, with the
 * operation pre-check and identify), and a GraphQL-shaped JSON answer for bodies express could
 * not read — never its HTML error page.
 */
import type { ApolloServer } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import type { Identify } from '../common/auth/identify';
import { unauthenticated } from '../common/errors/graphql-errors';
import { clientAddressOf } from '../common/limits/client-address';
import type { OperationGate } from '../common/limits/operation-gate';
import { metricsHandler } from '../common/metrics/metrics';
import { buildContext, type Context } from '../context';
import { stripeWebhook } from '../modules/billing/stripe-webhook';
import type { Services } from '../services';
import { corsPolicy } from './cors';
import { demoTokens } from './demo-tokens';
import { mountWeb } from './web';

export interface RouteDeps {
  db: DataSource;
  services: Services;
  apollo: ApolloServer<Context>;
  identify: Identify;
  gate: OperationGate;
  log: Logger;
}

export function mountRoutes(app: express.Express, deps: RouteDeps): void {
  const { db, services, apollo, identify, gate, log } = deps;
  const addressOf = clientAddressOf(services.config.trustProxyHops);
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
  if (!services.config.metricsPort) app.get('/metrics', metricsHandler(services.metrics));
  app.get('/auth/demo-tokens', demoTokens(services.config));
  mountWeb(app, { production: services.config.production });
  // Stripe signs the raw body: this route reads it unparsed.
  app.post('/webhooks/stripe', express.raw({ type: () => true, limit: '1mb' }), stripeWebhook(services, log));
  app.use(
    '/graphql',
    corsPolicy(services.config).middleware,
    express.json({ limit: '256kb' }),
    // The gate's document limits before Apollo validates (the same answer Apollo would give: 400).
    (req: express.Request, res: express.Response, next: express.NextFunction) => {
      const query = req.method === 'GET' ? (req.query as { query?: unknown }).query : (req.body as { query?: unknown } | undefined)?.query;
      if (typeof query !== 'string') return next();
      const checked = gate.document(query);
      if ('kind' in checked) return next();
      // A syntax error other than the token limit: Apollo reports it, with its locations.
      if (checked[0].extensions.code === 'GRAPHQL_PARSE_FAILED' && !/tokens/.test(checked[0].message)) return next();
      services.metrics.graphqlRequest('http', (req.method === 'GET' ? req.query : req.body)?.operationName, checked);
      res.status(400).json({ errors: checked.map((e) => ({ message: e.message, locations: e.locations, extensions: { code: e.extensions.code } })) });
    },
    expressMiddleware(apollo, {
      context: async ({ req }) => {
        const who = await identify(req.headers.authorization);
        if ('refused' in who) throw unauthenticated(who.refused);
        return buildContext(services, 'identity' in who ? who.identity : undefined, addressOf(req));
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
}
