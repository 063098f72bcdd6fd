import http from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import WebSocket from 'ws';
import { signToken } from '../src/common/auth/jwt';
import { Role } from '../src/common/auth/role.enum';
import { AccountByIdDocument, AdjustCreditsDocument, MeDocument } from './graphql/generated';
import { balanceOf, openAccount, signupCredits } from './helpers/accounts';
import { startTestApp, testToken, useTestApp } from './helpers/test-app';

const t = useTestApp();

/** Speaks graphql-transport-ws by hand: connection_init with `payload`, then reports the close. */
function closeCode(auth: { sub: string } | { token: string } | { params: Record<string, unknown> }): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(t.app.server.wsUrl, 'graphql-transport-ws');
    socket.on('open', async () => {
      const payload = 'params' in auth ? auth.params : { authorization: `Bearer ${'token' in auth ? auth.token : await t.app.token(auth.sub)}` };
      socket.send(JSON.stringify({ type: 'connection_init', payload }));
    });
    socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    socket.on('error', reject);
  });
}

async function accounts(): Promise<number> {
  return (await t.app.audit.query('SELECT count(*)::int AS n FROM accounts')).rows[0].n;
}

describe('identity', () => {
  it('refuses account data without a token with UNAUTHENTICATED', async () => {
    const res = await t.app.gql(MeDocument, {}, null);
    expect(res.data).toBeNull();
    expect(res.errors!.map((e) => e.extensions!.code)).toEqual(['UNAUTHENTICATED']);
  });

  it('refuses a token signed with another secret with 401 UNAUTHENTICATED and opens nothing', async () => {
    const forged = await signToken('some-other-secret-0123456789abcdef', 'mallory', Role.ADMIN);
    const res = await t.app.gql(MeDocument, {}, { token: forged });
    expect(res.status).toBe(401);
    expect(res.errors!.map((e) => [e.extensions!.code, e.message])).toEqual([['UNAUTHENTICATED', 'The token is invalid']]);
    expect(await accounts()).toBe(0);
  });

  it('refuses an expired token, saying so', async () => {
    const expired = await t.app.token('late', Role.USER, -60);
    const res = await t.app.gql(MeDocument, {}, { token: expired });
    expect(res.status).toBe(401);
    expect(res.errors!.map((e) => [e.extensions!.code, e.message])).toEqual([['UNAUTHENTICATED', 'The token has expired']]);
  });

  it('refuses a malformed authorization header and an unknown role', async () => {
    const raw = await fetch(t.app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Token abc' },
      body: JSON.stringify({ query: '{ me { id } }' }),
    });
    expect(raw.status).toBe(401);
    const { errors } = (await raw.json()) as { errors: { message: string; extensions: { code: string } }[] };
    expect(errors.map((e) => [e.extensions.code, e.message])).toEqual([['UNAUTHENTICATED', 'The authorization value must be "Bearer <token>"']]);
    const superuser = await new SignJWT({ role: 'superuser' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('eve')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(t.app.config.jwtSecret!));
    const res = await t.app.gql(MeDocument, {}, { token: superuser });
    expect(res.errors!.map((e) => [e.extensions!.code, e.message])).toEqual([['UNAUTHENTICATED', "The token's role must be one of user, admin, worker"]]);
  });

  it('refuses admin operations to users and workers with FORBIDDEN and changes nothing', async () => {
    await openAccount(t.app, 'victim');
    for (const role of [Role.USER, Role.WORKER]) {
      const adj = await t.app.gql(AdjustCreditsDocument, { input: { accountId: 'victim', amount: 1000, reason: 'gift' } }, { sub: 'x', role });
      expect(adj.errors!.map((e) => e.extensions!.code)).toEqual(['FORBIDDEN']);
      const read = await t.app.gql(AccountByIdDocument, { id: 'victim' }, { sub: 'x', role });
      expect(read.errors!.map((e) => e.extensions!.code)).toEqual(['FORBIDDEN']);
    }
    expect(await balanceOf(t.app, 'victim')).toBe(await signupCredits(t.app));
  });

  it('closes a websocket with a forged token with 4403', async () => {
    const forged = await signToken('some-other-secret-0123456789abcdef', 'mallory', Role.USER);
    expect(await closeCode({ token: forged })).toEqual({ code: 4403, reason: 'Forbidden' });
  });

  it('closes a websocket with an expired token with 4403', async () => {
    expect(await closeCode({ token: await t.app.token('late', Role.USER, -5) })).toEqual({ code: 4403, reason: 'Forbidden' });
  });

  it('closes a websocket without a token with 4401', async () => {
    expect(await closeCode({ params: {} })).toEqual({ code: 4401, reason: 'Unauthorized: send { authorization: "Bearer <jwt>" }' });
  });

  it('closes a websocket when its token expires', async () => {
    const token = await t.app.token('short-lived', Role.USER, 2);
    const started = Date.now();
    const closed = await closeCode({ token });
    expect(closed).toEqual({ code: 4403, reason: 'Forbidden: token expired' });
    expect(Date.now() - started).toBeGreaterThan(500);
  });
});

describe('identity from a JWKS URL', () => {
  it('accepts RS256 tokens signed by a key the JWKS publishes and refuses others', async () => {
    const good = await generateKeyPair('RS256');
    const bad = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(good.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    const jwks = http.createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()));
    const { port } = jwks.address() as { port: number };
    const app = await startTestApp({ JWT_SECRET: '', JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks.json` });
    try {
      const sign = (key: Parameters<SignJWT['sign']>[0], role = 'user') =>
        new SignJWT({ role }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('jwks-user').setExpirationTime('5m').sign(key);
      const ok = await app.gql(MeDocument, {}, { token: await sign(good.privateKey) });
      expect(ok.errors).toBeUndefined();
      expect(ok.data!.me.id).toBe('jwks-user');
      const forged = await app.gql(MeDocument, {}, { token: await sign(bad.privateKey) });
      expect(forged.errors!.map((e) => [e.extensions!.code, e.message])).toEqual([['UNAUTHENTICATED', 'The token is invalid']]);
      const hs = await app.gql(MeDocument, {}, { token: await testToken('jwks-user') });
      expect(hs.errors!.map((e) => [e.extensions!.code, e.message])).toEqual([['UNAUTHENTICATED', 'The token is invalid']]);
    } finally {
      await app.stop();
      jwks.close();
    }
  });
});
