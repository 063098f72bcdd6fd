/**
 * Development tokens that survive a restart: the development JWT secret kept in DATA_DIR
 * (src/common/auth/dev-secret.ts), `npm run token` (scripts/token.ts), the dashboard links in
 * the start-up output, and GET /auth/demo-tokens (src/http/demo-tokens.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { Pool } from 'pg';
import pino from 'pino';
import { devJwtSecret, devSecretPath, useDevSecretWhenUnset } from '../src/common/auth/dev-secret';
import { freePort } from '../src/common/db/embedded-postgres';
import type { Config } from '../src/config';
import { createServer } from '../src/server';
import { startService } from './helpers/process';
import { createTestDatabase, TEST_JWT_SECRET, testConfig, TestApp, useTestApp } from './helpers/test-app';

const ROOT = path.resolve(__dirname, '..');
const t = useTestApp();

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'credits-devsecret-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Runs scripts/token.ts as `npm run token` does, with this environment on top of a clean one. */
function tokenScript(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('JEST') && !['NODE_OPTIONS', 'JWT_SECRET', 'JWT_JWKS_URL', 'DATA_DIR', 'NODE_ENV'].includes(k)) clean[k] = v;
  }
  const child = spawn('npx', ['ts-node', '--transpile-only', 'scripts/token.ts', ...args], { cwd: ROOT, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** A server on a fresh database with this config (the test helper's, then `adjust`). */
async function startWith(adjust: (config: Config) => Config, env: Record<string, string> = {}): Promise<TestApp> {
  const url = await createTestDatabase();
  const config = adjust(testConfig(url, env));
  const server = await createServer(config, pino({ level: config.logLevel }));
  const audit = new Pool({ connectionString: url, max: 2 });
  return new TestApp(server, url, audit, config);
}

/** GET /auth/demo-tokens (Host as given: browsers send the name they were pointed at). */
function demoTokens(app: TestApp, host?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`http://127.0.0.1:${app.server.port}/auth/demo-tokens`, { headers: host ? { host } : {} }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
}

const notFound = (res: { status: number; body: unknown }) => [res.status, res.body];

const USAGE = 'usage: npm run token -- --sub <account id> --role user|admin|worker [--days <1 to the longest lifetime the service accepts: JWT_MAX_LIFETIME_SECONDS, 31 days by default>]\n';

describe('the development JWT secret', () => {
  it('is created once in DATA_DIR with mode 0600 and the same secret is given at every later call', () => {
    const dataDir = path.join(tempDir(), 'not-yet-created');
    const first = devJwtSecret({ production: false, dataDir });
    expect(first).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 random bytes, base64url
    const file = devSecretPath(dataDir);
    expect(file).toBe(path.join(dataDir, 'dev-jwt-secret'));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toBe(`${first}\n`);
    expect(devJwtSecret({ production: false, dataDir })).toBe(first);
    expect(devJwtSecret({ production: false, dataDir: tempDir() })).not.toBe(first); // another DATA_DIR, another secret
  });

  it('is never used in production', () => {
    const dataDir = tempDir();
    expect(() => devJwtSecret({ production: true, dataDir })).toThrow('The development JWT secret is never used in production: set JWT_SECRET or JWT_JWKS_URL');
    expect(() => statSync(devSecretPath(dataDir))).toThrow(/ENOENT/);
  });

  it('is used only when neither JWT_SECRET nor JWT_JWKS_URL is set', () => {
    const dataDir = tempDir();
    const withSecret = useDevSecretWhenUnset(testConfig('postgres://x@127.0.0.1/x', { DATA_DIR: dataDir }));
    expect([withSecret.jwtSecret, withSecret.jwtSecretGenerated]).toEqual([TEST_JWT_SECRET, false]);
    const withJwks = useDevSecretWhenUnset(testConfig('postgres://x@127.0.0.1/x', { DATA_DIR: dataDir, JWT_SECRET: '', JWT_JWKS_URL: 'https://idp.example.com/jwks' }));
    expect([withJwks.jwtSecret, withJwks.jwtSecretGenerated]).toEqual([undefined, false]);
    expect(() => statSync(devSecretPath(dataDir))).toThrow(/ENOENT/);
    const neither = useDevSecretWhenUnset(testConfig('postgres://x@127.0.0.1/x', { DATA_DIR: dataDir, JWT_SECRET: '' }));
    expect([neither.jwtSecret, neither.jwtSecretGenerated]).toEqual([devJwtSecret({ production: false, dataDir }), true]);
  });
});

describe('npm run token', () => {
  it('prints one token signed with JWT_SECRET that the running service accepts for that sub and role', async () => {
    const out = await tokenScript(['--sub', 'alice', '--role', 'user'], { JWT_SECRET: TEST_JWT_SECRET });
    expect([out.code, out.stderr]).toEqual([0, '']);
    expect(out.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const token = out.stdout.trim();
    const claims = decodeJwt(token);
    expect([claims.sub, claims.role, claims.exp! - claims.iat!]).toEqual(['alice', 'user', 30 * 24 * 3600]);
    const me = await t.app.raw<{ me: { id: string } }>('{ me { id } }', undefined, { token });
    expect(me.errors).toBeUndefined();
    expect(me.data).toEqual({ me: { id: 'alice' } });
  });

  it('signs an admin token for --days days that admin operations accept', async () => {
    const out = await tokenScript(['--sub', 'ops', '--role', 'admin', '--days', '2'], { JWT_SECRET: TEST_JWT_SECRET });
    expect(out.code).toBe(0);
    const token = out.stdout.trim();
    const claims = decodeJwt(token);
    expect([claims.sub, claims.role, claims.exp! - claims.iat!]).toEqual(['ops', 'admin', 2 * 24 * 3600]);
    await t.app.raw('{ me { id } }', undefined, { sub: 'someone' });
    const res = await t.app.raw<{ account: { id: string } }>('{ account(id: "someone") { id } }', undefined, { token });
    expect([res.errors, res.data]).toEqual([undefined, { account: { id: 'someone' } }]);
  });

  it('refuses a bad role, a missing --sub and a bad --days with a message and exit code 2, printing no token', async () => {
    const [role, sub, days] = await Promise.all([
      tokenScript(['--sub', 'alice', '--role', 'boss'], { JWT_SECRET: TEST_JWT_SECRET }),
      tokenScript(['--role', 'user'], { JWT_SECRET: TEST_JWT_SECRET }),
      tokenScript(['--sub', 'alice', '--role', 'user', '--days', '0'], { JWT_SECRET: TEST_JWT_SECRET }),
    ]);
    expect(role).toEqual({ code: 2, stdout: '', stderr: `token: --role must be one of user, admin, worker (got "boss")\n${USAGE}` });
    expect(sub).toEqual({ code: 2, stdout: '', stderr: `token: --sub is required: the account id, 1 to 128 characters\n${USAGE}` });
    expect(days).toEqual({ code: 2, stdout: '', stderr: `token: --days must be a whole number from 1 to 31 (got "0")\n${USAGE}` });
  });

  it('without JWT_SECRET signs with the DATA_DIR secret (creating it), which a service on that DATA_DIR accepts', async () => {
    const dataDir = tempDir();
    const out = await tokenScript(['--sub', 'bob', '--role', 'user'], { DATA_DIR: dataDir });
    expect([out.code, out.stderr]).toEqual([0, '']);
    expect(statSync(devSecretPath(dataDir)).mode & 0o777).toBe(0o600);
    const app = await startWith(useDevSecretWhenUnset, { JWT_SECRET: '', DATA_DIR: dataDir });
    try {
      expect((await app.raw('{ me { id } }', undefined, { token: out.stdout.trim() })).data).toEqual({ me: { id: 'bob' } });
    } finally {
      await app.stop();
    }
  });
});

describe('GET /auth/demo-tokens', () => {
  it('answers three working tokens (user, admin, worker) while the development secret is in use', async () => {
    const app = await startWith(useDevSecretWhenUnset, { JWT_SECRET: '', DATA_DIR: tempDir() });
    try {
      expect(app.config.jwtSecretGenerated).toBe(true);
      const res = await demoTokens(app);
      expect(res.status).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      const { tokens } = res.body as { tokens: Array<{ sub: string; role: string; token: string }> };
      expect(tokens.map(({ sub, role }) => ({ sub, role }))).toEqual([
        { sub: 'demo-user', role: 'user' },
        { sub: 'demo-admin', role: 'admin' },
        { sub: 'demo-worker', role: 'worker' },
      ]);
      expect(Object.keys(res.body as object)).toEqual(['tokens']);
      for (const { sub, role, token } of tokens) {
        expect(Object.keys(tokens.find((x) => x.sub === sub)!)).toEqual(['sub', 'role', 'token']);
        expect([decodeJwt(token).sub, decodeJwt(token).role]).toEqual([sub, role]);
        expect((await app.raw('{ me { id } }', undefined, { token })).data).toEqual({ me: { id: sub } });
      }
      const admin = tokens[1].token;
      expect((await app.raw('{ account(id: "demo-user") { id } }', undefined, { token: admin })).data).toEqual({ account: { id: 'demo-user' } });
      const forbidden = await app.raw('{ account(id: "demo-user") { id } }', undefined, { token: tokens[0].token });
      expect(forbidden.errors!.map((e) => e.extensions!.code)).toEqual(['FORBIDDEN']);
      // Addressed by localhost too; not by another name (a DNS-rebinding page gets nothing).
      expect((await demoTokens(app, `localhost:${app.server.port}`)).status).toBe(200);
      expect(notFound(await demoTokens(app, `rebind.example:${app.server.port}`))).toEqual([404, { error: 'Not found' }]);
    } finally {
      await app.stop();
    }
  });

  it('is 404 with a real JWT_SECRET', async () => {
    expect(t.app.config.jwtSecretGenerated).toBe(false);
    expect(notFound(await demoTokens(t.app))).toEqual([404, { error: 'Not found' }]);
  });

  it('is 404 in production, even with a config that claims the development secret', async () => {
    const app = await startWith((config) => ({ ...config, jwtSecretGenerated: true }), { NODE_ENV: 'production' });
    try {
      expect([app.config.production, app.config.jwtSecretGenerated]).toEqual([true, true]);
      expect(notFound(await demoTokens(app))).toEqual([404, { error: 'Not found' }]);
    } finally {
      await app.stop();
    }
  });
});

describe('the start-up output', () => {
  it('prints each demo token with its dashboard link, and the tokens of one run still work after a restart', async () => {
    const dataDir = tempDir();
    const port = await freePort();
    const env = { DATABASE_URL: await createTestDatabase(), DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' };
    const first = startService(env);
    let firstUser: string;
    try {
      await first.waitFor(/dashboard: http:\/\/localhost:\d+\/#token=\S+\n[\s\S]*dashboard: [\s\S]*dashboard: \S+\n/);
      const out = first.output();
      expect(out).toContain(`No JWT_SECRET set: tokens are signed with the development secret in ${path.join(dataDir, 'dev-jwt-secret')} (kept across restarts).`);
      for (const [role, sub] of [['user', 'demo-user'], ['admin', 'demo-admin'], ['worker', 'demo-worker']]) {
        const m = new RegExp(`  ${role.padEnd(6)} \\(sub ${sub}\\): (\\S+)\\n {10}dashboard: (\\S+)\\n`).exec(out);
        expect(m).not.toBeNull();
        expect(m![2]).toBe(`http://localhost:${port}/#token=${m![1]}`);
        expect([decodeJwt(m![1]).sub, decodeJwt(m![1]).role]).toEqual([sub, role]);
      }
      firstUser = /user   \(sub demo-user\): (\S+)/.exec(out)![1];
    } finally {
      first.child.kill('SIGTERM');
      await first.exited;
    }
    const second = startService(env);
    try {
      await second.waitFor(/sub demo-worker\): \S+/);
      const res = await fetch(`http://127.0.0.1:${port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${firstUser}` },
        body: JSON.stringify({ query: '{ me { id } }' }),
      });
      expect([res.status, await res.json()]).toEqual([200, { data: { me: { id: 'demo-user' } } }]);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });
});
