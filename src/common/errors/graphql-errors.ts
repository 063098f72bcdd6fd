import { GraphQLError } from 'graphql';

/** Errors that leave as top-level GraphQL errors with a stable `extensions.code`. */
export function unauthenticated(message = 'A valid bearer token is required'): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } });
}

export function forbidden(message = 'Your role does not allow this operation'): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'FORBIDDEN', http: { status: 403 } } });
}

/** The request's fault; `field` is the path to the input field at fault (as in UserError). */
export function badUserInput(message: string, field?: string[]): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', ...(field ? { field } : {}) } });
}

/** PostgreSQL SQLSTATEs worth retrying a whole transaction for. */
export function isRetryableDbError(e: unknown): boolean {
  const code = (e as { code?: string; driverError?: { code?: string } })?.driverError?.code ?? (e as { code?: string })?.code;
  return code === '40001' || code === '40P01';
}

export function dbErrorCode(e: unknown): string | undefined {
  return (e as { driverError?: { code?: string } })?.driverError?.code ?? (e as { code?: string })?.code;
}
