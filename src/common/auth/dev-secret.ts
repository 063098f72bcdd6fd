/**
 * The development JWT secret: with neither JWT_SECRET nor JWT_JWKS_URL (outside production
 * only), tokens are signed with a secret kept in `<DATA_DIR>/dev-jwt-secret` (32 random bytes,
 * base64url, mode 0600), created at the first start and reused after, so demo tokens and tokens
 * from `npm run token` survive restarts. Used by src/main.ts, scripts/token.ts and
 * GET /auth/demo-tokens.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config';
import { signToken } from './jwt';
import { Role } from './role.enum';

export const DEV_SECRET_FILE = 'dev-jwt-secret';

/** The accounts GET /auth/demo-tokens and the start-up output offer tokens for. */
export const DEMO_IDENTITIES: ReadonlyArray<{ sub: string; role: Role }> = [
  { sub: 'demo-user', role: Role.USER },
  { sub: 'demo-admin', role: Role.ADMIN },
  { sub: 'demo-worker', role: Role.WORKER },
];

export function devSecretPath(dataDir: string): string {
  return path.join(dataDir, DEV_SECRET_FILE);
}

/**
 * The development secret under `config.dataDir`, created when missing. Refused in production.
 * Two processes starting at once agree on one secret: the file appears complete or not at all.
 */
export function devJwtSecret(config: Pick<Config, 'production' | 'dataDir'>): string {
  if (config.production) throw new Error('The development JWT secret is never used in production: set JWT_SECRET or JWT_JWKS_URL');
  const file = devSecretPath(config.dataDir);
  const existing = readSecret(file);
  if (existing !== undefined) return existing;
  mkdirSync(config.dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, `${secret}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600); // whatever the umask
  try {
    linkSync(tmp, file); // fails when another process created it first: then use theirs
    return secret;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const theirs = readSecret(file);
    if (theirs === undefined) throw e;
    return theirs;
  } finally {
    unlinkSync(tmp);
  }
}

function readSecret(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const secret = text.trim();
  if (Buffer.byteLength(secret, 'utf8') < 32) throw new Error(`${file} does not hold a usable secret (32+ bytes): delete it to generate a new one`);
  return secret;
}

/**
 * What main.ts does before the start: with no JWT_SECRET and no JWT_JWKS_URL (loadConfig already
 * refused that in production), use the development secret and mark the config so.
 */
export function useDevSecretWhenUnset(config: Config): Config {
  if (!config.jwtSecret && !config.jwtJwksUrl && !config.production) {
    config.jwtSecret = devJwtSecret(config);
    config.jwtSecretGenerated = true;
  }
  return config;
}

/** Fresh tokens (30 days) for the demo identities. */
export async function signDemoTokens(secret: string): Promise<Array<{ sub: string; role: Role; token: string }>> {
  return Promise.all(DEMO_IDENTITIES.map(async ({ sub, role }) => ({ sub, role, token: await signToken(secret, sub, role) })));
}
