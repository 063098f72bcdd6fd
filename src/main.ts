import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { signToken } from './common/auth/jwt';
import { Role } from './common/auth/role.enum';
import { createLogger } from './common/logger';
import { ConfigError, loadConfig, type Config } from './config';
import { createServer } from './server';

async function demoTokens(config: Config): Promise<string> {
  const secret = config.jwtSecret!;
  const lines = [];
  for (const [role, sub] of [[Role.USER, 'demo-user'], [Role.ADMIN, 'demo-admin'], [Role.WORKER, 'demo-worker']] as const) {
    lines.push(`  ${role.padEnd(6)} (sub ${sub}): ${await signToken(secret, sub, role)}`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`credits-service: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  if (!config.jwtSecret && !config.jwtJwksUrl) {
    config.jwtSecret = randomBytes(32).toString('base64url');
    config.jwtSecretGenerated = true;
  }
  const log = createLogger(config.logLevel);
  const started = Date.now();
  const server = await createServer(config, log);
  log.info({ url: server.url, startupMs: Date.now() - started, embedded: !config.databaseUrl }, 'credits service ready');
  if (config.jwtSecretGenerated) {
    process.stdout.write(
      `\nNo JWT_SECRET set: generated one for this run. Demo tokens (valid 30 days, until restart):\n${await demoTokens(config)}\n\n` +
        `Try: curl -s ${server.url} -H 'content-type: application/json' -H "authorization: Bearer <user token>" ` +
        `-d '{"query":"{ me { id balance { available } } }"}'\n\n`,
    );
  }

  let signals = 0;
  const shutdown = (signal: string) => {
    if (++signals > 1) {
      log.warn('second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal }, 'shutting down: finishing requests in flight');
    server.stop().then(
      () => {
        log.info('stopped cleanly');
        process.exit(0);
      },
      (e) => {
        log.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((e) => {
  process.stderr.write(`credits-service failed to start: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
