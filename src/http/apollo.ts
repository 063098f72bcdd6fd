/**
 * The HTTP transport's GraphQL server: Apollo Server 5 over the app's schema, with the same
 * operation limits as the websockets (validation rules, then the cost once the operation is
 * known), CSRF prevention, no batching, masked errors in production; draining it closes the
 * websockets too.
 */
import { GraphQLError } from 'graphql';
import type http from 'node:http';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import type { GraphQLFormattedError, GraphQLSchema } from 'graphql';
import pino from 'pino';
import { createErrorFormatter } from '../common/errors/format-error';
import type { OperationGate } from '../common/limits/operation-gate';
import { NOT_READ, type Metrics } from '../common/metrics/metrics';
import { MAX_DOCUMENT_TOKENS } from '../common/limits/operation-limits';
import type { Config } from '../config';
import type { Context } from '../context';

export interface ApolloDeps {
  httpServer: http.Server;
  schema: GraphQLSchema;
  config: Config;
  gate: OperationGate;
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  wsCleanup: { dispose(): void | Promise<void> };
  metrics: Metrics;
}

export async function createApollo(deps: ApolloDeps): Promise<ApolloServer<Context>> {
  const { httpServer, schema, config, gate, formatError, wsCleanup, metrics } = deps;
  // Requests by operation and the code of what was sent (formatted); a context that failed (a
  // refused token) is answered before the operation is read: its code, without logging it twice.
  const codeOnly = createErrorFormatter(config.production, pino({ level: 'silent' }));
  const metricsPlugin: ApolloServerPlugin<Context> = {
    async requestDidStart() {
      return {
        async willSendResponse({ response, operationName, request }) {
          metrics.graphqlRequest('http', operationName ?? request.operationName, response.body.kind === 'single' ? response.body.singleResult.errors : undefined);
        },
      };
    },
    async contextCreationDidFail({ error }) {
      const e = error instanceof GraphQLError ? error : new GraphQLError(`Context creation failed: ${error.message}`, { originalError: error });
      metrics.graphqlRequest('http', NOT_READ, [codeOnly({ message: e.message, extensions: { ...e.extensions, code: e.extensions.code ?? 'INTERNAL_SERVER_ERROR' } }, e)]);
    },
  };
  const limitsPlugin: ApolloServerPlugin<Context> = {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, request, operationName, operation }) {
          // A subscription is a stream: graphql-ws serves it on this path; over POST it would run its resolver with no event.
          if (operation?.operation === 'subscription') {
            throw new GraphQLError('Subscriptions are served over websockets (the graphql-transport-ws protocol) on this path; HTTP answers queries and mutations', {
              extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
            });
          }
          const refusal = gate.cost(document, request.variables, operationName);
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
    // The document limits ran before (the gate, in front of Apollo); these are the schema's own.
    validationRules: gate.validationRules,
    formatError,
    plugins: [
      // No landing page from a CDN: outside production a browser is sent to the local /graphiql.
      ApolloServerPluginLandingPageDisabled(),
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
      metricsPlugin,
    ],
  });
  await apollo.start();
  return apollo;
}
