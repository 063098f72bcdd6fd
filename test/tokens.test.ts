/**
 * Which tokens get in (issue 13, part 1), through the real HTTP and websocket stack: every token
 * needs `exp` and may live at most JWT_MAX_LIFETIME_SECONDS (default 31 days); JWT_ISSUER and
 * JWT_AUDIENCE are checked when set (so a token the identity provider minted for another
 * application is refused, `role` claim and all); and what loadConfig refuses at the start: a JWKS
 * without issuer and audience in production, a JWKS over plain http to another machine, an HS256
 * secret under 32 bytes. A refusal over HTTP is 401 UNAUTHENTICATED with the reason; a websocket
 * is closed with 4403.
 */
import http from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import WebSocket from 'ws';
import { ConfigError, loadConfig } from '../src/config';
import { MeDocument } from './graphql/generated';
import { startTestApp, TEST_JWT_SECRET, useTestApp, type TestApp } from './helpers/test-app';

const DAY = 86400;
const now = () => Math.floor(Date.now() / 1000);

type Claims = Omit<JWTPayload, 'exp'> & { role?: string; exp?: unknown };

/** An HS256 token with exactly these claims, signed with the test servers' secret. */
function hs256(claims: Claims): Promise<string> {
  return new SignJWT(claims as JWTPayload).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(TEST_JWT_SECRET));
}

/** Claims of an ordinary token: issued now, one hour to live. */
function hour(sub: string): Claims {
  return { sub, iat: now(), exp: now() + 3600 };
}

/** `{ me { id } }` over HTTP with this token: the account id, or the refusal (code and message). */
async function overHttp(app: TestApp, token: string): Promise<{ status: number; me?: string; errors?: string[][] }> {
  const res = await app.gql(MeDocument, {}, { token });
  if (res.errors) return { status: res.status, errors: res.errors.map((e) => [String(e.extensions!.code), e.message]) };
  return { status: res.status, me: res.data!.me.id };
}

/** connection_init with this token over graphql-transport-ws: acknowledged, or how the socket was closed. */
function overWebsocket(app: TestApp, token: string): Promise<'acknowledged' | { code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(app.server.wsUrl, 'graphql-transport-ws');
    let acknowledged = false;
    socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })));
    socket.on('message', (data) => {
      if ((JSON.parse(data.toString()) as { type: string }).type === 'connection_ack') {
        acknowledged = true;
        socket.close(1000);
      }
    });
    socket.on('close', (code, reason) => resolve(acknowledged ? 'acknowledged' : { code, reason: reason.toString() }));
    socket.on('error', reject);
  });
}

const FORBIDDEN = { code: 4403, reason: 'Forbidden' };

function unauthenticated(message: string): { status: number; errors: string[][] } {
  return { status: 401, errors: [['UNAUTHENTICATED', message]] };
}

async function accountExists(app: TestApp, id: string): Promise<boolean> {
  return (await app.rows('SELECT 1 FROM accounts WHERE id = $1', [id])).length > 0;
}

describe('expiry and lifetime (default JWT_MAX_LIFETIME_SECONDS: 31 days)', () => {
  const t = useTestApp();
  const TOO_LONG = unauthenticated('The token lives longer than the 31 days this service accepts');

  it('refuses a token without exp over HTTP with 401 UNAUTHENTICATED, and opens no account', async () => {
    const forever = await hs256({ sub: 'no-exp', role: 'admin', iat: now() });
    expect(await overHttp(t.app, forever)).toEqual(unauthenticated('The token has no expiry (exp)'));
    expect(await accountExists(t.app, 'no-exp')).toBe(false);
  });

  it('closes a websocket whose token has no exp with 4403', async () => {
    expect(await overWebsocket(t.app, await hs256({ sub: 'no-exp-ws', iat: now() }))).toEqual(FORBIDDEN);
  });

  it('refuses a token without exp however often it is sent, over either transport (nothing refused is remembered)', async () => {
    const forever = await hs256({ sub: 'no-exp-again' });
    for (let i = 0; i < 2; i++) {
      expect(await overHttp(t.app, forever)).toEqual(unauthenticated('The token has no expiry (exp)'));
      expect(await overWebsocket(t.app, forever)).toEqual(FORBIDDEN);
    }
  });

  it('refuses a token whose exp is not a number', async () => {
    const token = await hs256({ sub: 'odd-exp', iat: now(), exp: 'tomorrow' });
    expect(await overHttp(t.app, token)).toEqual(unauthenticated('The token has no valid expiry (exp must be a number)'));
  });

  it('refuses a token whose exp − iat is over 31 days, and accepts one of exactly 31 days', async () => {
    const iat = now() - 10;
    expect(await overHttp(t.app, await hs256({ sub: 'long', iat, exp: iat + 31 * DAY + 1 }))).toEqual(TOO_LONG);
    expect(await accountExists(t.app, 'long')).toBe(false);
    expect(await overHttp(t.app, await hs256({ sub: 'long', iat, exp: iat + 31 * DAY }))).toEqual({ status: 200, me: 'long' });
  });

  it('judges a token by its whole lifetime, not by what is left of it', async () => {
    // Issued 20 days ago for 32 days: 12 days left, but a 32-day token all the same.
    const token = await hs256({ sub: 'old-long', iat: now() - 20 * DAY, exp: now() + 12 * DAY });
    expect(await overHttp(t.app, token)).toEqual(TOO_LONG);
  });

  it('measures a token without iat from now: refused beyond 31 days from now, accepted inside', async () => {
    expect(await overHttp(t.app, await hs256({ sub: 'no-iat', exp: now() + 31 * DAY + 120 }))).toEqual(TOO_LONG);
    expect(await overHttp(t.app, await hs256({ sub: 'no-iat', exp: now() + 31 * DAY - 120 }))).toEqual({ status: 200, me: 'no-iat' });
  });

  it('measures a token whose iat is in the future from now, so a forward-dated iat does not stretch the limit', async () => {
    // exp − iat is 2 days, but it would be accepted for the next 32.
    const token = await hs256({ sub: 'future-iat', iat: now() + 30 * DAY, exp: now() + 32 * DAY });
    expect(await overHttp(t.app, token)).toEqual(TOO_LONG);
  });

  it('closes a websocket whose token lives too long with 4403, and lets one inside the limit in', async () => {
    const iat = now();
    expect(await overWebsocket(t.app, await hs256({ sub: 'long-ws', iat, exp: iat + 32 * DAY }))).toEqual(FORBIDDEN);
    expect(await overWebsocket(t.app, await hs256({ sub: 'long-ws', iat, exp: iat + 30 * DAY }))).toBe('acknowledged');
  });

  it('leaves iss and aud unchecked while JWT_ISSUER and JWT_AUDIENCE are unset', async () => {
    const token = await hs256({ ...hour('any-issuer'), iss: 'https://anyone.example.com/', aud: 'anything' });
    expect(await overHttp(t.app, token)).toEqual({ status: 200, me: 'any-issuer' });
  });
});

describe('JWT_MAX_LIFETIME_SECONDS=3600', () => {
  const t = useTestApp({ JWT_MAX_LIFETIME_SECONDS: '3600' });

  it('refuses a token living longer than an hour, naming the limit, and accepts one of an hour', async () => {
    const iat = now();
    expect(await overHttp(t.app, await hs256({ sub: 'hourly', iat, exp: iat + 3601 }))).toEqual(unauthenticated('The token lives longer than the 1 hour this service accepts'));
    expect(await overWebsocket(t.app, await hs256({ sub: 'hourly', iat, exp: iat + 3601 }))).toEqual(FORBIDDEN);
    expect(await overHttp(t.app, await hs256({ sub: 'hourly', iat, exp: iat + 3600 }))).toEqual({ status: 200, me: 'hourly' });
  });
});

describe('JWT_ISSUER and JWT_AUDIENCE set', () => {
  const ISSUER = 'https://idp.example.com/';
  const AUDIENCE = 'credits-api';
  const t = useTestApp({ JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE });

  it('accepts a token from that issuer for that audience (aud a string, or a list naming it)', async () => {
    expect(await overHttp(t.app, await hs256({ ...hour('ours'), iss: ISSUER, aud: AUDIENCE }))).toEqual({ status: 200, me: 'ours' });
    expect(await overHttp(t.app, await hs256({ ...hour('ours-too'), iss: ISSUER, aud: ['billing-app', AUDIENCE] }))).toEqual({ status: 200, me: 'ours-too' });
    expect(await overWebsocket(t.app, await hs256({ ...hour('ours-ws'), iss: ISSUER, aud: AUDIENCE }))).toBe('acknowledged');
  });

  it('refuses a token from another issuer, over HTTP and websockets', async () => {
    const token = await hs256({ ...hour('elsewhere'), iss: 'https://other-idp.example.com/', aud: AUDIENCE });
    expect(await overHttp(t.app, token)).toEqual(unauthenticated('The token was issued by another issuer'));
    expect(await overWebsocket(t.app, token)).toEqual(FORBIDDEN);
    expect(await accountExists(t.app, 'elsewhere')).toBe(false);
  });

  it('refuses a token for another audience, over HTTP and websockets', async () => {
    const token = await hs256({ ...hour('billing'), iss: ISSUER, aud: ['billing-app', 'reports-app'] });
    expect(await overHttp(t.app, token)).toEqual(unauthenticated('The token was issued for another audience'));
    expect(await overWebsocket(t.app, token)).toEqual(FORBIDDEN);
    expect(await accountExists(t.app, 'billing')).toBe(false);
  });

  it('refuses a token without iss or without aud', async () => {
    const noIss = await hs256({ ...hour('anonymous-issuer'), aud: AUDIENCE });
    expect(await overHttp(t.app, noIss)).toEqual(unauthenticated('The token has no issuer (iss)'));
    expect(await overWebsocket(t.app, noIss)).toEqual(FORBIDDEN);
    const noAud = await hs256({ ...hour('no-audience'), iss: ISSUER });
    expect(await overHttp(t.app, noAud)).toEqual(unauthenticated('The token has no audience (aud)'));
    expect(await overWebsocket(t.app, noAud)).toEqual(FORBIDDEN);
  });
});

describe('a JWKS with JWT_ISSUER and JWT_AUDIENCE', () => {
  it("refuses an admin token the same identity provider minted for another application, and accepts this service's", async () => {
    const idp = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(idp.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    const jwks = http.createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()));
    const { port } = jwks.address() as { port: number };
    const issuer = 'https://idp.example.com/';
    const app = await startTestApp({ JWT_SECRET: '', JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks.json`, JWT_ISSUER: issuer, JWT_AUDIENCE: 'credits-api' });
    try {
      const rs256 = (claims: Claims) => new SignJWT(claims as JWTPayload).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(idp.privateKey);
      const otherApp = await rs256({ ...hour('ops'), role: 'admin', iss: issuer, aud: 'billing-app' });
      expect(await overHttp(app, otherApp)).toEqual(unauthenticated('The token was issued for another audience'));
      expect(await overWebsocket(app, otherApp)).toEqual(FORBIDDEN);
      expect(await accountExists(app, 'ops')).toBe(false);
      const ours = await rs256({ ...hour('ops'), role: 'admin', iss: issuer, aud: 'credits-api' });
      expect(await overHttp(app, ours)).toEqual({ status: 200, me: 'ops' });
      expect(await overWebsocket(app, ours)).toBe('acknowledged');
      const forever = await rs256({ sub: 'ops', iss: issuer, aud: 'credits-api' });
      expect(await overHttp(app, forever)).toEqual(unauthenticated('The token has no expiry (exp)'));
    } finally {
      await app.stop();
      jwks.close();
    }
  });
});

describe('token configuration (loadConfig)', () => {
  const PRODUCTION = { NODE_ENV: 'production', DATABASE_URL: 'postgres://x@127.0.0.1/x', PAYMENT_PROVIDER: 'stripe', STRIPE_SECRET_KEY: 'sk_x', STRIPE_WEBHOOK_SECRET: 'whsec_x' };
  const JWKS = 'https://idp.example.com/.well-known/jwks.json';

  /** loadConfig's ConfigError (its message), or 'accepted'. */
  function outcome(env: Record<string, string>): string {
    try {
      loadConfig(env);
      return 'accepted';
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      return e.message;
    }
  }

  it('refuses JWT_JWKS_URL in production without JWT_ISSUER or without JWT_AUDIENCE, naming the one missing', () => {
    expect(outcome({ ...PRODUCTION, JWT_JWKS_URL: JWKS })).toBe('Invalid JWT_ISSUER="": is required with JWT_JWKS_URL when NODE_ENV=production: the iss of your identity provider\'s tokens');
    expect(outcome({ ...PRODUCTION, JWT_JWKS_URL: JWKS, JWT_ISSUER: 'https://idp.example.com/' })).toBe(
      'Invalid JWT_AUDIENCE="": is required with JWT_JWKS_URL when NODE_ENV=production: the aud your identity provider puts in tokens for this service',
    );
    expect(outcome({ ...PRODUCTION, JWT_JWKS_URL: JWKS, JWT_AUDIENCE: 'credits-api' })).toBe('Invalid JWT_ISSUER="": is required with JWT_JWKS_URL when NODE_ENV=production: the iss of your identity provider\'s tokens');
    const config = loadConfig({ ...PRODUCTION, JWT_JWKS_URL: JWKS, JWT_ISSUER: 'https://idp.example.com/', JWT_AUDIENCE: 'credits-api' });
    expect([config.jwtJwksUrl, config.jwtIssuer, config.jwtAudience, config.jwtMaxLifetimeSeconds]).toEqual([JWKS, 'https://idp.example.com/', 'credits-api', 31 * DAY]);
  });

  it('refuses JWT_JWKS_URL over plain http to another machine', () => {
    for (const url of ['http://idp.example.com/.well-known/jwks.json', 'http://localhost.example.com/jwks', 'http://localhost@idp.example.com/jwks', 'http://10.0.0.5:8080/jwks']) {
      expect(outcome({ NODE_ENV: 'test', JWT_JWKS_URL: url })).toBe(`Invalid JWT_JWKS_URL="${url}": accepts an https:// URL (http:// only to 127.0.0.1, localhost or [::1])`);
    }
  });

  it('accepts JWT_JWKS_URL over http to this machine (127.0.0.1, localhost, [::1]) and over https', () => {
    for (const url of ['http://127.0.0.1:9000/jwks.json', 'http://localhost:9000/jwks.json', 'http://[::1]:9000/jwks.json', JWKS]) {
      expect(loadConfig({ NODE_ENV: 'test', JWT_JWKS_URL: url }).jwtJwksUrl).toBe(url);
    }
  });

  it('refuses a JWT_SECRET under 32 bytes without echoing it, counting bytes rather than characters', () => {
    const ascii31 = 'Zq7-secret-of-31-bytes-exactly!';
    const utf8of31 = 'é'.repeat(15) + 'x'; // 16 characters, 31 bytes
    expect([ascii31.length, Buffer.byteLength(utf8of31)]).toEqual([31, 31]);
    for (const secret of [ascii31, utf8of31]) {
      for (const env of [{ NODE_ENV: 'test', JWT_SECRET: secret }, { ...PRODUCTION, JWT_SECRET: secret }]) {
        const message = outcome(env);
        expect(message).toBe('Invalid JWT_SECRET="<hidden>": accepts a secret of at least 32 bytes (e.g. openssl rand -base64 32)');
        expect(message).not.toContain(secret.slice(0, 8));
      }
    }
  });

  it('accepts a JWT_SECRET of 32 bytes', () => {
    for (const secret of ['Zq7-secret-of-32-bytes-exactly!!', 'é'.repeat(16)]) {
      expect(loadConfig({ ...PRODUCTION, JWT_SECRET: secret }).jwtSecret).toBe(secret);
    }
  });
});
