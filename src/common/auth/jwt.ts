/**
 * Token verification: HS256 with JWT_SECRET, or RS256/ES256 keys from JWT_JWKS_URL.
 * Claim `sub` is the account id (1..128 chars); claim `role` is user (default), admin or worker.
 * Every token needs `exp`, and may live at most `maxLifetimeSeconds` (exp − iat, or exp − now
 * without iat); with `issuer` / `audience` set, its `iss` must be that issuer and its `aud` name
 * that audience — so a token the same identity provider minted for another application is refused.
 */
import { WORKSPACE_ID_PREFIX } from '../ids';
import { createRemoteJWKSet, jwtVerify, SignJWT, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { Role, ROLES } from './role.enum';

export interface Identity {
  sub: string;
  role: Role;
  /** Expiry in epoch seconds (every accepted token has one). */
  exp: number;
}

export class InvalidTokenError extends Error {}

export type TokenVerifier = (token: string) => Promise<Identity>;

export interface TokenVerifierOptions {
  /** HS256 secret (used when there is no jwksUrl). */
  secret?: string;
  /** RS256/ES256 keys from this JWKS. */
  jwksUrl?: string;
  /** The `iss` a token must carry; unchecked when unset. */
  issuer?: string;
  /** The `aud` a token must name (its `aud` or one of them); unchecked when unset. */
  audience?: string;
  /** The longest lifetime a token may have; default 31 days. */
  maxLifetimeSeconds?: number;
}

export const DEFAULT_MAX_LIFETIME_SECONDS = 31 * 86400;

const CACHE_LIMIT = 10_000;

/**
 * Verifies tokens; a token that verified once is remembered (up to 10,000 of them) until it
 * expires, so repeated requests with one token skip the signature check. The cache belongs to
 * this verifier and its options: an entry is a token that passed every check here (signature,
 * exp, lifetime, iss, aud, sub, role), and only a verified token is remembered. Of those checks
 * only expiry changes with time (a lifetime measured from now only shrinks), and it is checked
 * again at every hit.
 */
export function createTokenVerifier(opts: TokenVerifierOptions): TokenVerifier {
  const verifyToken = createUncachedVerifier(opts);
  const cache = new Map<string, Identity>();
  return async (token: string) => {
    const hit = cache.get(token);
    if (hit && hit.exp * 1000 > Date.now()) return hit;
    if (hit) cache.delete(token);
    const identity = await verifyToken(token);
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
    cache.set(token, identity);
    return identity;
  };
}

function createUncachedVerifier(opts: TokenVerifierOptions): TokenVerifier {
  const secret = opts.secret ? new TextEncoder().encode(opts.secret) : undefined;
  const jwks = opts.jwksUrl ? createRemoteJWKSet(new URL(opts.jwksUrl)) : undefined;
  const maxLifetime = opts.maxLifetimeSeconds ?? DEFAULT_MAX_LIFETIME_SECONDS;
  const claims: JWTVerifyOptions = {
    requiredClaims: ['exp'],
    ...(opts.issuer !== undefined ? { issuer: opts.issuer } : {}),
    ...(opts.audience !== undefined ? { audience: opts.audience } : {}),
  };
  return async (token: string) => {
    let payload: JWTPayload;
    try {
      if (jwks) {
        ({ payload } = await jwtVerify(token, jwks, { ...claims, algorithms: ['RS256', 'ES256'] }));
      } else if (secret) {
        ({ payload } = await jwtVerify(token, secret, { ...claims, algorithms: ['HS256'] }));
      } else {
        throw new InvalidTokenError('no token verification is configured');
      }
    } catch (e) {
      throw new InvalidTokenError(refusal(e));
    }
    // jose checked the signature first, then that exp is present, a number and in the future, and
    // that iat, when present, is a number.
    const exp = payload.exp!;
    const now = Math.floor(Date.now() / 1000);
    // exp − iat; measured from now when there is no iat or iat claims to be in the future.
    const lifetime = exp - Math.min(payload.iat ?? now, now);
    if (lifetime > maxLifetime) {
      throw new InvalidTokenError(`The token lives longer than the ${duration(maxLifetime)} this service accepts`);
    }
    const { sub, role = Role.USER } = payload as JWTPayload & { role?: unknown };
    if (typeof sub !== 'string' || sub.length < 1 || sub.length > 128) {
      throw new InvalidTokenError('The token has no valid `sub` claim (1 to 128 characters)');
    }
    // Workspaces are accounts too, with ids of their own shape: no person may sign in as one.
    if (sub.startsWith(WORKSPACE_ID_PREFIX)) throw new InvalidTokenError(`The token's \`sub\` must not start with "${WORKSPACE_ID_PREFIX}" (workspace ids)`);
    if (typeof role !== 'string' || !ROLES.includes(role)) {
      throw new InvalidTokenError(`The token's role must be one of ${ROLES.join(', ')}`);
    }
    return { sub, role: role as Role, exp };
  };
}

/** What the caller is told about a token jose refused (claims are only reached once the signature holds). */
function refusal(e: unknown): string {
  const { code, claim, reason } = e as { code?: string; claim?: string; reason?: string };
  if (code === 'ERR_JWT_EXPIRED') return 'The token has expired';
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') {
    const missing = reason === 'missing';
    if (claim === 'exp') return missing ? 'The token has no expiry (exp)' : 'The token has no valid expiry (exp must be a number)';
    if (claim === 'iss') return missing ? 'The token has no issuer (iss)' : 'The token was issued by another issuer';
    if (claim === 'aud') return missing ? 'The token has no audience (aud)' : 'The token was issued for another audience';
  }
  return 'The token is invalid';
}

/** 2678400 → "31 days", 3600 → "1 hour", 90 → "90 seconds". */
function duration(seconds: number): string {
  for (const [unit, size] of [['day', 86400], ['hour', 3600], ['minute', 60]] as const) {
    if (seconds >= size && seconds % size === 0) return plural(seconds / size, unit);
  }
  return plural(seconds, 'second');
}

function plural(n: number, unit: string): string {
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

/** Signs an HS256 token (demo tokens at start, tests, benchmarks); it always has iat and exp. */
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
