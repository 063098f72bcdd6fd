/**
 * `npm run token -- --sub alice --role user [--days 30]`: prints one HS256 token the service
 * accepts, signed with JWT_SECRET when set, else (outside production) with the development secret
 * in DATA_DIR (src/common/auth/dev-secret.ts; created when missing, as the service would).
 * A bad or missing argument: a message on stderr and exit code 2.
 */
import { parseArgs } from 'node:util';
import { devJwtSecret } from '../src/common/auth/dev-secret';
import { signToken } from '../src/common/auth/jwt';
import { ROLES, type Role } from '../src/common/auth/role.enum';
import { ConfigError, loadConfig } from '../src/config';

const USAGE = 'usage: npm run token -- --sub <account id> --role user|admin|worker [--days <1 to the longest lifetime the service accepts: JWT_MAX_LIFETIME_SECONDS, 31 days by default>]';

function refuse(message: string): never {
  process.stderr.write(`token: ${message}\n${USAGE}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values: { sub?: string; role?: string; days?: string };
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: { sub: { type: 'string' }, role: { type: 'string' }, days: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    refuse((e as Error).message);
  }
  const { sub, role = '', days = '30' } = values;
  if (sub === undefined || sub.length < 1 || sub.length > 128) refuse('--sub is required: the account id, 1 to 128 characters');
  if (!ROLES.includes(role)) refuse(`--role must be one of ${ROLES.join(', ')} (got ${JSON.stringify(role)})`);

  let secret: string;
  try {
    const config = loadConfig();
    const most = Math.floor(config.jwtMaxLifetimeSeconds / 86400);
    if (!/^\d+$/.test(days) || Number(days) < 1 || Number(days) > most) refuse(`--days must be a whole number from 1 to ${most} (got ${JSON.stringify(days)})`);
    if (config.jwtSecret) secret = config.jwtSecret;
    else if (config.jwtJwksUrl) refuse('JWT_JWKS_URL is set: the service accepts tokens from your identity provider, not ones signed here (set JWT_SECRET to sign HS256 tokens)');
    else secret = devJwtSecret(config);
  } catch (e) {
    if (e instanceof ConfigError) refuse(e.message);
    throw e;
  }
  process.stdout.write(`${await signToken(secret, sub, role as Role, Number(days) * 24 * 3600)}\n`);
}

main().catch((e) => {
  process.stderr.write(`token: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
