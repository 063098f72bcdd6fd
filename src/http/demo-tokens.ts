/**
 * GET /auth/demo-tokens: outside production, while tokens are signed with the development secret
 * (config.jwtSecretGenerated, see src/common/auth/dev-secret.ts), fresh 30-day tokens for
 * demo-user, demo-admin and demo-worker, for the dashboard's sign-in:
 * `{"tokens":[{"sub":"demo-user","role":"user","token":"…"}, …]}`. 404 in production, with a
 * real JWT_SECRET or JWT_JWKS_URL, and for a request not addressed to localhost, 127.0.0.1 or
 * [::1] (a page on another name that resolves to this machine — DNS rebinding — gets nothing).
 */
import type { RequestHandler } from 'express';
import { signDemoTokens } from '../common/auth/dev-secret';
import type { Config } from '../config';

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

function loopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  try {
    return LOOPBACK_HOSTS.has(new URL(`http://${host}`).hostname);
  } catch {
    return false;
  }
}

export function demoTokens(config: Config): RequestHandler {
  return async (req, res, next) => {
    try {
      if (config.production || !config.jwtSecretGenerated || !config.jwtSecret || !loopbackHost(req.headers.host)) {
        res.status(404).json({ error: 'Not found' });
        return;
      }
      res.setHeader('cache-control', 'no-store');
      res.json({ tokens: await signDemoTokens(config.jwtSecret) });
    } catch (e) {
      next(e);
    }
  };
}
