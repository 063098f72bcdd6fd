/**
 * One browser-origin policy for /graphql (src/http/cors.ts): CORS headers over HTTP and the
 * websocket upgrade. Listed origins (CORS_ORIGINS), the request's own origin and, outside
 * production, http://localhost / 127.0.0.1 / [::1] on any port are allowed; requests without an
 * Origin are not affected; any other origin gets no CORS header (HTTP) or a 403 (websockets).
 */
import http from 'node:http';
import WebSocket from 'ws';
import { corsPolicy } from '../src/http/cors';
import { ConfigError, loadConfig } from '../src/config';
import { startTestApp, useTestApp, type TestApp } from './helpers/test-app';

const LISTED = 'https://app.example.com';
const t = useTestApp({ CORS_ORIGINS: `${LISTED}, https://admin.example.com` });

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A raw HTTP request (any header, Origin and Host included). */
function request(app: TestApp, method: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(app.url, { method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function preflight(app: TestApp, origin: string): Promise<Answer> {
  return request(app, 'OPTIONS', { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' });
}

function post(app: TestApp, headers: Record<string, string>): Promise<Answer> {
  return request(app, 'POST', { 'content-type': 'application/json', ...headers }, JSON.stringify({ query: '{ tiers { code } }' }));
}

/** The CORS headers of an answer (access-control-*, vary). */
function corsHeaders(a: Answer): Record<string, unknown> {
  return Object.fromEntries(Object.entries(a.headers).filter(([k]) => k.startsWith('access-control-') || k === 'vary'));
}

const ALLOWED_PREFLIGHT = (origin: string) => ({
  'access-control-allow-origin': origin,
  'access-control-allow-methods': 'GET,POST,OPTIONS',
  'access-control-allow-headers': 'content-type,authorization,apollo-require-preflight,x-apollo-operation-name',
  'access-control-max-age': '600',
  vary: 'Origin',
});

/** Opens a websocket with this Origin (none when undefined): 'open' and the server's connection_ack, or the refused upgrade's status and body. */
function websocket(app: TestApp, origin: string | undefined): Promise<{ opened: true; ack: string } | { opened: false; status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(app.server.wsUrl, 'graphql-transport-ws', origin === undefined ? {} : { origin });
    socket.on('open', async () => {
      socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${await app.token('cors-ws')}` } }));
      socket.once('message', (m) => {
        socket.close();
        resolve({ opened: true, ack: JSON.parse(m.toString()).type });
      });
    });
    socket.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ opened: false, status: res.statusCode!, body }));
    });
    socket.on('error', (e) => {
      if (!/Unexpected server response/.test(e.message)) reject(e);
    });
  });
}

describe('CORS on /graphql over HTTP', () => {
  it('answers a preflight from a listed origin with 204 and the allowed origin, methods, headers and max age', async () => {
    const a = await preflight(t.app, LISTED);
    expect(a.status).toBe(204);
    expect(a.headers['content-length']).toBe('0');
    expect(a.body).toBe('');
    expect(corsHeaders(a)).toEqual(ALLOWED_PREFLIGHT(LISTED));
    const second = await preflight(t.app, 'https://admin.example.com');
    expect(second.status).toBe(204);
    expect(corsHeaders(second)).toEqual(ALLOWED_PREFLIGHT('https://admin.example.com'));
  });

  it('allows http://localhost, 127.0.0.1 and [::1] on any port outside production', async () => {
    for (const origin of ['http://localhost:5173', 'http://127.0.0.1:8080', 'http://[::1]:3000', 'http://localhost']) {
      const a = await preflight(t.app, origin);
      expect([origin, a.status]).toEqual([origin, 204]);
      expect(corsHeaders(a)).toEqual(ALLOWED_PREFLIGHT(origin));
    }
  });

  it('gives a preflight from an unlisted origin no CORS header, so the browser blocks the call', async () => {
    for (const origin of ['https://evil.example', 'https://app.example.com.evil.example', 'http://app.example.com', 'https://localhost:5173', 'http://localhost.evil.example:5173', 'null']) {
      const a = await preflight(t.app, origin);
      expect([origin, a.status]).toEqual([origin, 400]); // not answered as a preflight: Apollo refuses an OPTIONS request
      expect([origin, corsHeaders(a)]).toEqual([origin, { vary: 'Origin' }]);
    }
  });

  it('adds the allow-origin header to the answer of a POST from an allowed origin', async () => {
    const a = await post(t.app, { origin: LISTED });
    expect(a.status).toBe(200);
    expect(JSON.parse(a.body).data.tiers.length).toBeGreaterThan(0);
    expect(corsHeaders(a)).toEqual({ 'access-control-allow-origin': LISTED, vary: 'Origin' });
  });

  it('answers a POST from an unlisted origin without the allow-origin header (the browser hides the answer)', async () => {
    const a = await post(t.app, { origin: 'https://evil.example' });
    expect(a.status).toBe(200);
    expect(corsHeaders(a)).toEqual({ vary: 'Origin' });
  });

  it('always allows the same origin (the dashboard served from /)', async () => {
    const self = new URL(t.app.url).origin; // http://127.0.0.1:<port>
    const a = await post(t.app, { origin: self });
    expect(a.status).toBe(200);
    expect(corsHeaders(a)).toEqual({ 'access-control-allow-origin': self, vary: 'Origin' });
    // Addressed by another name: its own origin is that name's.
    const named = await post(t.app, { origin: 'http://credits.internal:8443', host: 'credits.internal:8443' });
    expect(corsHeaders(named)).toEqual({ 'access-control-allow-origin': 'http://credits.internal:8443', vary: 'Origin' });
    // Behind a TLS-terminating proxy.
    const proxied = await post(t.app, { origin: 'https://credits.example.net', host: 'credits.example.net', 'x-forwarded-proto': 'https' });
    expect(corsHeaders(proxied)).toEqual({ 'access-control-allow-origin': 'https://credits.example.net', vary: 'Origin' });
    const otherScheme = await post(t.app, { origin: 'https://credits.internal:8443', host: 'credits.internal:8443' });
    expect(corsHeaders(otherScheme)).toEqual({ vary: 'Origin' });
  });

  it('leaves requests without an Origin (servers, curl, apps) as they were: answered, no CORS header', async () => {
    const a = await post(t.app, {});
    expect(a.status).toBe(200);
    expect(JSON.parse(a.body).data.tiers.length).toBeGreaterThan(0);
    expect(corsHeaders(a)).toEqual({ vary: 'Origin' });
  });
});

describe('the origin policy on websockets', () => {
  it('refuses the upgrade from an unlisted origin with 403, before any socket opens', async () => {
    const before = t.app.server.wsConnections();
    expect(await websocket(t.app, 'https://evil.example')).toEqual({ opened: false, status: 403, body: 'Forbidden: origin not allowed' });
    expect(await websocket(t.app, 'https://localhost:5173')).toEqual({ opened: false, status: 403, body: 'Forbidden: origin not allowed' });
    expect(t.app.server.wsConnections()).toBe(before);
  });

  it('opens a websocket from a listed origin, a localhost origin outside production and the same origin', async () => {
    for (const origin of [LISTED, 'http://localhost:5173', new URL(t.app.url).origin]) {
      expect([origin, await websocket(t.app, origin)]).toEqual([origin, { opened: true, ack: 'connection_ack' }]);
    }
  });

  it('opens a websocket without an Origin header (servers, apps)', async () => {
    expect(await websocket(t.app, undefined)).toEqual({ opened: true, ack: 'connection_ack' });
  });
});

describe('the origin policy in production', () => {
  let prod: TestApp;
  beforeAll(async () => {
    prod = await startTestApp({ NODE_ENV: 'production', CORS_ORIGINS: LISTED });
  });
  afterAll(async () => {
    await prod?.stop();
  });

  it('does not allow localhost origins unless listed, over HTTP and websockets', async () => {
    for (const origin of ['http://localhost:5173', 'http://127.0.0.1:5173', 'http://[::1]:5173']) {
      const a = await preflight(prod, origin);
      expect([origin, a.status, corsHeaders(a)]).toEqual([origin, 400, { vary: 'Origin' }]);
      expect([origin, await websocket(prod, origin)]).toEqual([origin, { opened: false, status: 403, body: 'Forbidden: origin not allowed' }]);
    }
  });

  it('allows the listed origin and the same origin, and requests without an Origin', async () => {
    const a = await preflight(prod, LISTED);
    expect(a.status).toBe(204);
    expect(corsHeaders(a)).toEqual(ALLOWED_PREFLIGHT(LISTED));
    expect(await websocket(prod, LISTED)).toEqual({ opened: true, ack: 'connection_ack' });
    const self = new URL(prod.url).origin;
    expect(corsHeaders(await post(prod, { origin: self }))).toEqual({ 'access-control-allow-origin': self, vary: 'Origin' });
    expect(await websocket(prod, self)).toEqual({ opened: true, ack: 'connection_ack' });
    expect(await websocket(prod, undefined)).toEqual({ opened: true, ack: 'connection_ack' });
  });

  it('allows a localhost origin in production when it is listed', () => {
    const policy = corsPolicy(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'a-long-enough-secret-0123456789abcdef', PAYMENT_PROVIDER: 'stripe', STRIPE_SECRET_KEY: 'sk_x', STRIPE_WEBHOOK_SECRET: 'whsec_x', CORS_ORIGINS: 'http://localhost:5173' }));
    expect([policy.allows('http://localhost:5173'), policy.allows('http://localhost:5174'), policy.allows(undefined)]).toEqual([true, false, true]);
  });
});

describe('CORS_ORIGINS', () => {
  it('normalises listed origins as browsers send them (lower case, no default port, no trailing slash)', () => {
    expect(loadConfig({ CORS_ORIGINS: ' https://App.Example.com/ ,http://localhost:3000, https://x.example:443,' }).corsOrigins).toEqual([
      'https://app.example.com',
      'http://localhost:3000',
      'https://x.example',
    ]);
    expect(loadConfig({}).corsOrigins).toEqual([]);
  });

  it('refuses an entry that is not an http(s) origin, naming the variable and the entry', () => {
    const accepts = 'accepts comma-separated origins such as https://app.example.com (http or https, a host and an optional port, no path)';
    for (const bad of ['https://app.example.com/app', 'app.example.com', 'ftp://files.example.com', 'https://*.example.com', 'https://app.example.com?x=1', 'https://user@app.example.com', 'null']) {
      let error: unknown;
      try {
        loadConfig({ CORS_ORIGINS: `https://ok.example.com,${bad}` });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toBe(`Invalid CORS_ORIGINS=${JSON.stringify(bad)}: ${accepts}`);
    }
  });
});
