/**
 * Token verification: HS256 with JWT_SECRET, or RS256/ES256 keys from JWT_JWKS_URL.
 * Claim `sub` is the account id (1..128 chars); claim `role` is user (default), admin or worker.
 */
import { createRemoteJWKSet, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { Role, ROLES } from './role.enum';

export interface Identity {
  sub: string;
  role: Role;
  /** Expiry in epoch seconds, when the token has one. */
  exp?: number;
}

export class InvalidTokenError extends Error {}

export type TokenVerifier = (token: string) => Promise<Identity>;

const CACHE_LIMIT = 10_000;

/**
 * Verifies tokens; a token that verified once is remembered (up to 10,000 of them) until it
 * expires, so repeated requests with one token skip the signature check.
 */
export function createTokenVerifier(opts: { secret?: string; jwksUrl?: string }): TokenVerifier {
  const verifyToken = createUncachedVerifier(opts);
  const cache = new Map<string, Identity>();
  return async (token: string) => {
    const hit = cache.get(token);
    if (hit && (!hit.exp || hit.exp * 1000 > Date.now())) return hit;
    if (hit) cache.delete(token);
    const identity = await verifyToken(token);
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
    cache.set(token, identity);
    return identity;
  };
}

function createUncachedVerifier(opts: { secret?: string; jwksUrl?: string }): TokenVerifier {
  const secret = opts.secret ? new TextEncoder().encode(opts.secret) : undefined;
  const jwks = opts.jwksUrl ? createRemoteJWKSet(new URL(opts.jwksUrl)) : undefined;
  return async (token: string) => {
    let payload: JWTPayload;
    try {
      if (jwks) {
        ({ payload } = await jwtVerify(token, jwks, { algorithms: ['RS256', 'ES256'] }));
      } else if (secret) {
        ({ payload } = await jwtVerify(token, secret, { algorithms: ['HS256'] }));
      } else {
        throw new InvalidTokenError('no token verification is configured');
      }
    } catch (e) {
      const code = (e as { code?: string }).code;
      throw new InvalidTokenError(code === 'ERR_JWT_EXPIRED' ? 'The token has expired' : 'The token is invalid');
    }
    const { sub, role = Role.USER, exp } = payload as JWTPayload & { role?: unknown };
    if (typeof sub !== 'string' || sub.length < 1 || sub.length > 128) {
      throw new InvalidTokenError('The token has no valid `sub` claim (1 to 128 characters)');
    }
    if (typeof role !== 'string' || !ROLES.includes(role)) {
      throw new InvalidTokenError(`The token's role must be one of ${ROLES.join(', ')}`);
    }
    return { sub, role: role as Role, exp: typeof exp === 'number' ? exp : undefined };
  };
}

/** Signs an HS256 token (demo tokens at start, tests, benchmarks). */
export async function signToken(secret: string, sub: string, role: Role, ttlSeconds = 30 * 24 * 3600): Promise<string> {
  return new SignJWT({ role })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(new TextEncoder().encode(secret));
}

/** `Bearer <jwt>` → `<jwt>`; undefined when absent; throws when present but malformed. */
export function bearerToken(header: unknown): string | undefined {
  if (header === undefined || header === null || header === '') return undefined;
  if (typeof header !== 'string') throw new InvalidTokenError('The authorization value must be a string');
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw new InvalidTokenError('The authorization value must be "Bearer <token>"');
  return m[1];
}
