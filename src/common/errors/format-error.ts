/**
 * Error masking: errors we raise on purpose (GraphQLErrors with a code: BAD_USER_INPUT,
 * UNAUTHENTICATED, FORBIDDEN, validation, limits) pass through; anything else is logged and,
 * in production, replaced by a generic INTERNAL_SERVER_ERROR without message details.
 */
import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import type { Logger } from 'pino';

const FORBIDDEN_TO_FORBIDDEN: Record<string, string> = { UNAUTHORIZED: 'FORBIDDEN' };

export function createErrorFormatter(production: boolean, log: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    const code = formatted.extensions?.code as string | undefined;
    const intended = original instanceof GraphQLError || (error instanceof GraphQLError && !error.originalError);
    if (intended && code && code !== 'INTERNAL_SERVER_ERROR') {
      const mapped = FORBIDDEN_TO_FORBIDDEN[code];
      const { stacktrace: _s, ...extensions } = (formatted.extensions ?? {}) as Record<string, unknown>;
      return {
        ...formatted,
        extensions: { ...(production ? extensions : formatted.extensions), code: mapped ?? code },
      };
    }
    log.error({ err: original, path: formatted.path }, 'internal error');
    if (!production) return formatted;
    return { message: 'Internal server error', path: formatted.path, locations: formatted.locations, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
  };
}
