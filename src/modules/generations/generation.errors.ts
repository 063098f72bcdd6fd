import { GraphQLError } from 'graphql';

/**
 * Worker operations return the job itself, so their refusals are GraphQL errors whose
 * `extensions.code` is NOT_FOUND (no such job), FORBIDDEN (claimed by another worker),
 * INVALID_STATE (an illegal transition) or BAD_USER_INPUT; nothing changes on a refusal.
 */
export function jobError(code: 'NOT_FOUND' | 'FORBIDDEN' | 'INVALID_STATE' | 'BAD_USER_INPUT', message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code } });
}
