/**
 * Error masking: errors we raise on purpose (GraphQLErrors with a code: BAD_USER_INPUT,
 * UNAUTHENTICATED, FORBIDDEN, validation, limits) pass through; a database that cannot be
 * reached is SERVICE_UNAVAILABLE (retry); anything else is logged and, in production, replaced
 * by a generic INTERNAL_SERVER_ERROR without message details.
 */
import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import type { Logger } from 'pino';
import { dbErrorCode } from './graphql-errors';

/** Connection-level failures: SQLSTATE class 08, shutdown and start-up states, lost sockets. */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);
const UNAVAILABLE_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND']);
const UNAVAILABLE_MESSAGES = /Connection terminated|connection error and is not queryable|timeout exceeded when trying to connect|Client was closed and is not queryable|Query runner already released/;

export function isDatabaseUnavailable(e: unknown): boolean {
  const code = dbErrorCode(e);
  if (code && (code.startsWith('08') || UNAVAILABLE_STATES.has(code) || UNAVAILABLE_NODE_CODES.has(code))) return true;
  const driver = (e as { driverError?: unknown })?.driverError;
  return [e, driver].some((x) => x instanceof Error && UNAVAILABLE_MESSAGES.test(x.message));
}

export const UNAVAILABLE_MESSAGE = 'The service cannot reach its database right now. Retry shortly; a mutation retried with the same idempotencyKey is applied at most once';

/**
 * The error for a request that could not start because the database is away (opening a new
 * caller's account in the request's context): SERVICE_UNAVAILABLE with HTTP 503, as for an
 * operation that found it away.
 */
export function unavailableError(): GraphQLError {
  return new GraphQLError(UNAVAILABLE_MESSAGE, { extensions: { code: 'SERVICE_UNAVAILABLE', http: { status: 503 } } });
}

const FORBIDDEN_TO_FORBIDDEN: Record<string, string> = { UNAUTHORIZED: 'FORBIDDEN' };

export function createErrorFormatter(production: boolean, log: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    const code = formatted.extensions?.code as string | undefined;
    const intended = original instanceof GraphQLError || (error instanceof GraphQLError && !error.originalError);
    if (code === 'GRAPHQL_PARSE_FAILED' && /call stack/i.test(formatted.message)) {
      // The parser ran out of stack on a deeply nested document: not the engine's words.
      return { message: 'Syntax Error: the document is nested too deeply', extensions: { code } };
    }
    if (intended && code && code !== 'INTERNAL_SERVER_ERROR') {
      const mapped = FORBIDDEN_TO_FORBIDDEN[code];
      const { stacktrace: _s, ...extensions } = (formatted.extensions ?? {}) as Record<string, unknown>;
      return {
        ...formatted,
        extensions: { ...(production ? extensions : formatted.extensions), code: mapped ?? code },
      };
    }
    const httpStatus = (error as { extensions?: { http?: { status?: number } } })?.extensions?.http?.status;
    if (error instanceof GraphQLError && !error.originalError && httpStatus && httpStatus >= 400 && httpStatus < 500) {
      // Apollo's own refusals of a request it cannot run (e.g. a persisted-query hash that does not match).
      return { message: error.message, extensions: { code: 'BAD_REQUEST' } };
    }
    const fromEngine = error instanceof GraphQLError && (!error.originalError || error.originalError instanceof GraphQLError);
    if (fromEngine && /^(Too many errors processing variables|Variable "\$)/.test(error.message)) {
      // graphql-js reports variables it cannot coerce without a code when it runs outside Apollo
      // (the websocket transport) — wrapping a scalar's own uncoded GraphQLError — and stops after 50 errors with an uncoded error of its own:
      // either way it is the request's fault.
      return { message: error.message, extensions: { code: 'BAD_USER_INPUT' } };
    }
    const sqlState = dbErrorCode(original);
    if (sqlState?.startsWith('22')) {
      // A data exception: PostgreSQL could not take a value from the request as it is (a NUL
      // character, a number or date out of range, text where an id belongs). The request is at
      // fault, not the service; say so without the database's own words.
      log.warn({ err: original, sqlState, path: formatted.path }, 'a request value the database refused');
      return { message: 'A value in the request is not valid', path: formatted.path, locations: formatted.locations, extensions: { code: 'BAD_USER_INPUT' } };
    }
    if (sqlState === '55P03' || sqlState === '57014') {
      // lock_timeout (another change holds the account's row) or statement_timeout: rolled back
      // whole; a retry with the same key completes or replays it.
      log.warn({ sqlState, path: formatted.path }, sqlState === '55P03' ? 'gave up waiting for a row lock' : 'statement timeout');
      return {
        message: sqlState === '55P03'
          ? 'Another change to this account is in progress; nothing was changed. Retry shortly with the same idempotencyKey'
          : 'The request took too long and was stopped; nothing was changed. Retry shortly, or ask for less',
        path: formatted.path,
        locations: formatted.locations,
        extensions: { code: 'SERVICE_UNAVAILABLE' },
      };
    }
    if (isDatabaseUnavailable(original)) {
      // The database is restarting or unreachable (or dropped this request's connection): what
      // was not committed is rolled back, and a retry with the same idempotencyKey completes or
      // replays the mutation once the database is back.
      log.warn({ err: (original as Error)?.message, sqlState, path: formatted.path }, 'database unavailable');
      return {
        message: UNAVAILABLE_MESSAGE,
        path: formatted.path,
        locations: formatted.locations,
        extensions: { code: 'SERVICE_UNAVAILABLE' },
      };
    }
    log.error({ err: original, path: formatted.path }, 'internal error');
    if (!production) return formatted;
    return { message: 'Internal server error', path: formatted.path, locations: formatted.locations, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
  };
}
