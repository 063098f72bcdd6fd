/**
 * CORS from a page on another origin, in real Chromium: one policy for fetch and websockets
 * (API.md "Operator and browser surface"). Two origins map to this machine (Chromium's host
 * resolver rules): allowed.test, listed in CORS_ORIGINS, and blocked.test, not listed.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { launchBrowser, type Browser } from '../helpers/browser';
import { startTestApp, type TestApp } from '../helpers/test-app';

let app: TestApp;
let browser: Browser;
let pages: http.Server;
let pagePort: number;

beforeAll(async () => {
  pages = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>another origin</title>'));
  await new Promise<void>((r) => pages.listen(0, '127.0.0.1', r));
  pagePort = (pages.address() as AddressInfo).port;
  app = await startTestApp({ CORS_ORIGINS: `http://allowed.test:${pagePort}` });
  browser = await launchBrowser(['--host-resolver-rules=MAP allowed.test 127.0.0.1, MAP blocked.test 127.0.0.1']);
});
afterEach(async () => {
  await app.checkInvariants();
});
afterAll(async () => {
  await browser?.close();
  await app?.stop();
  await new Promise((r) => pages.close(r));
});

/** From a page on `origin`: a POST with a bearer token (a preflighted request) and a graphql-ws handshake. */
async function fromPageOn(host: string): Promise<{ fetch: string; socket: string }> {
  const page = await browser.page();
  await page.goto(`http://${host}:${pagePort}/`);
  const token = await app.token('cross-origin');
  const api = app.url;
  const result = (await page.evaluate(`(async () => {
    const out = {};
    try {
      const res = await fetch(${JSON.stringify(api)}, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer ${token}' }, body: JSON.stringify({ query: '{ me { id } }' }) });
      out.fetch = 'answered ' + JSON.stringify(await res.json());
    } catch (e) { out.fetch = 'blocked: ' + e.name; }
    out.socket = await new Promise((resolve) => {
      const ws = new WebSocket(${JSON.stringify(api.replace(/^http/, 'ws'))}, 'graphql-transport-ws');
      ws.onopen = () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: 'Bearer ${token}' } }));
      ws.onmessage = (m) => { resolve('opened: ' + JSON.parse(m.data).type); ws.close(); };
      ws.onerror = () => resolve('refused');
    });
    return out;
  })()`)) as { fetch: string; socket: string };
  await page.close();
  return result;
}

describe('CORS from a page on another origin', () => {
  it('answers a listed origin over fetch and websockets alike', async () => {
    expect(await fromPageOn('allowed.test')).toEqual({ fetch: 'answered {"data":{"me":{"id":"cross-origin"}}}', socket: 'opened: connection_ack' });
  });

  it('blocks an origin not listed over fetch and websockets alike', async () => {
    expect(await fromPageOn('blocked.test')).toEqual({ fetch: 'blocked: TypeError', socket: 'refused' });
  });
});
