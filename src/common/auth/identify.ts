/**
 * Who is calling, the same way for both transports: the `Bearer <jwt>` value of the HTTP
 * Authorization header or of the websocket's connectionParams.authorization. No value is
 * anonymous (HTTP: no identity, resolvers that need one answer UNAUTHENTICATED; websocket:
 * closed 4401); a malformed value or a token that does not verify is refused (HTTP:
 * UNAUTHENTICATED with the reason; websocket: closed 4403).
 */
import { bearerToken, InvalidTokenError, type Identity, type TokenVerifier } from './jwt';

export type Identification = { identity: Identity } | { anonymous: true } | { refused: string };

export type Identify = (authorization: unknown) => Promise<Identification>;

export function createIdentify(verify: TokenVerifier): Identify {
  const reason = (e: unknown) => (e instanceof InvalidTokenError ? e.message : 'The token is invalid');
  return async (authorization) => {
    let token: string | undefined;
    try {
      token = bearerToken(authorization);
    } catch (e) {
      return { refused: reason(e) };
    }
    if (!token) return { anonymous: true };
    try {
      return { identity: await verify(token) };
    } catch (e) {
      return { refused: reason(e) };
    }
  };
}
