import 'reflect-metadata';
import { devSecretPath, signDemoTokens, useDevSecretWhenUnset } from './common/auth/dev-secret';
import { createLogger } from './common/logger';
import { ConfigError, loadConfig, type Config } from './config';
import { createServer } from './server';

/** One line per demo token, then its dashboard link (the dashboard reads the `#token=` fragment). */
async function demoTokens(config: Config, port: number): Promise<string> {
  const lines = [];
  for (const { sub, role, token } of await signDemoTokens(config.jwtSecret!)) {
    lines.push(`  ${role.padEnd(6)} (sub ${sub}): ${token}`);
    lines.push(`          dashboard: http://localhost:${port}/#token=${token}`);
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
  useDevSecretWhenUnset(config);
  const log = createLogger(config.logLevel);
  const started = Date.now();
  const server = await createServer(config, log);
  log.info({ url: server.url, startupMs: Date.now() - started, embedded: !config.databaseUrl }, 'credits service ready');
  if (config.jwtSecretGenerated) {
    process.stdout.write(
      `\nNo JWT_SECRET set: tokens are signed with the development secret in ${devSecretPath(config.dataDir)} (kept across restarts).\n` +
        `Demo tokens (valid 30 days; more with \`npm run token -- --sub <id> --role user|admin|worker\`):\n${await demoTokens(config, server.port)}\n\n` +
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
