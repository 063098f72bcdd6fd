/**
 * One browser-origin policy for /graphql, over HTTP (CORS headers) and websockets (the upgrade
 * is refused with 403). Allowed: requests without an Origin header (servers, curl, mobile apps:
 * CORS is a browser matter), the request's own origin (the dashboard at `/`), the origins in
 * CORS_ORIGINS, and outside production any http://localhost, http://127.0.0.1 or http://[::1]
 * origin on any port (dev servers such as Vite).
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import cors from 'cors';
import type { RequestHandler } from 'express';
import type { Config } from '../config';

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

export const CORS_METHODS = ['GET', 'POST', 'OPTIONS'];
export const CORS_ALLOWED_HEADERS = ['content-type', 'authorization', 'apollo-require-preflight', 'x-apollo-operation-name'];
export const CORS_MAX_AGE_SECONDS = 600;

export interface CorsPolicy {
  /**
   * Whether a request with this Origin header may be answered to a browser; `self` is the
   * request's own origin (see requestOrigin). No Origin header: always.
   */
  allows(origin: string | undefined, self?: string): boolean;
  /** Express middleware for /graphql: CORS headers when allowed, none when not; answers preflights itself (204) when allowed. */
  middleware: RequestHandler;
}

/**
 * The origin a request was addressed to: its Host header with the scheme it arrived on (TLS, or
 * `x-forwarded-proto` from a TLS-terminating proxy — a header pages cannot set on a websocket
 * upgrade or a simple request). Undefined without a usable Host.
 */
export function requestOrigin(req: IncomingMessage): string | undefined {
  const host = req.headers.host;
  if (!host) return undefined;
  const forwarded = String(req.headers['x-forwarded-proto'] ?? '').split(',')[0].trim().toLowerCase();
  const scheme = forwarded === 'https' || forwarded === 'http' ? forwarded : (req.socket as TLSSocket).encrypted ? 'https' : 'http';
  try {
    // Normalised as a browser writes its Origin (lower case, no default port).
    return new URL(`${scheme}://${host}`).origin;
  } catch {
    return undefined;
  }
}

function isLocalDevOrigin(origin: string): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  return url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname) && url.origin === origin;
}

export function corsPolicy(config: Pick<Config, 'production' | 'corsOrigins'>): CorsPolicy {
  const listed = new Set(config.corsOrigins);
  const allows = (origin: string | undefined, self?: string): boolean => {
    if (origin === undefined) return true;
    if (self !== undefined && origin === self) return true;
    if (listed.has(origin)) return true;
    return !config.production && isLocalDevOrigin(origin);
  };
  const headers = cors((req, callback) =>
    callback(null, {
      // true reflects the request's Origin; false adds no CORS header (the browser then blocks the answer).
      origin: req.headers.origin !== undefined && allows(req.headers.origin, requestOrigin(req as IncomingMessage)),
      methods: CORS_METHODS,
      allowedHeaders: CORS_ALLOWED_HEADERS,
      maxAge: CORS_MAX_AGE_SECONDS,
    }),
  );
  const middleware: RequestHandler = (req, res, next) => {
    // The answer depends on the Origin: caches must keep them apart.
    res.vary('Origin');
    headers(req, res, next);
  };
  return { allows, middleware };
}
