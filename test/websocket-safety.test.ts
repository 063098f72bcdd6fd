import WebSocket from 'ws';
import { BalanceChangedDocument, SetLowCreditThresholdDocument } from './graphql/generated';
import { openAccount } from './helpers/accounts';
import { subscribe, untilLive } from './helpers/subscriptions';
import { eventually, useTestApp } from './helpers/test-app';

const t = useTestApp({ WS_KEEPALIVE_MS: '400', WS_INIT_TIMEOUT_MS: '300', WS_MAX_SUBSCRIPTIONS: '3', WS_MAX_BUFFERED_BYTES: '16384', WS_MAX_SOCKETS_PER_ACCOUNT: '2' });

/** Pings each socket received, counted from its opening. */
const pingsOf = new WeakMap<WebSocket, number>();

function raw(options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const socket = new WebSocket(t.app.server.wsUrl, 'graphql-transport-ws', options);
  socket.on('ping', () => pingsOf.set(socket, (pingsOf.get(socket) ?? 0) + 1));
  return new Promise((resolve, reject) => {
    socket.on('open', () => resolve(socket));
    socket.on('error', reject);
  });
}

function closed(socket: WebSocket): Promise<{ code: number; reason: string; at: number }> {
  return new Promise((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: reason.toString(), at: Date.now() })));
}

async function initialised(sub: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const socket = await raw(options);
  socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${await t.app.token(sub)}` } }));
  await new Promise((r) => socket.once('message', r));
  return socket;
}

describe('websocket safety', () => {
  it('pings every socket each keep-alive period and drops one that stops answering, keeping one that answers', async () => {
    const answering = await initialised('keepalive-a');
    const silent = await initialised('keepalive-b', { autoPong: false });
    const c = await closed(silent);
    // Dropped when its next ping came due with the previous one unanswered (the socket is terminated: 1006 on this side).
    expect(c.code).toBe(1006);
    expect(pingsOf.get(silent)).toBe(1);
    await eventually(() => (pingsOf.get(answering) ?? 0) >= 3);
    expect(answering.readyState).toBe(WebSocket.OPEN);
    answering.close();
  });

  it('closes a socket that does not initialise in time with 4408', async () => {
    const socket = await raw();
    const opened = Date.now();
    const c = await closed(socket);
    expect(c.code).toBe(4408);
    expect(c.at - opened).toBeGreaterThanOrEqual(250); // not before its 300 ms (no upper bound: a busy machine may close it later)
  });

  it('closes a third socket of one account with 4429 while two are open, and takes one again once a socket closed', async () => {
    const ack = (socket: WebSocket) => new Promise<string>((resolve) => {
      socket.once('message', (m) => resolve(JSON.parse(m.toString()).type));
      socket.once('close', (code, reason) => resolve(`closed ${code} ${reason}`));
    });
    const open = async () => {
      const socket = await raw();
      const answer = ack(socket);
      socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${await t.app.token('many-tabs')}` } }));
      return { socket, answer: await answer };
    };
    const a = await open();
    const b = await open();
    const c = await open();
    expect([a.answer, b.answer, c.answer]).toEqual(['connection_ack', 'connection_ack', 'closed 4429 Too many sockets for this account: at most 2']);
    const other = await initialised('other-tabs'); // another account is not affected
    const closing = closed(a.socket);
    a.socket.close();
    await closing;
    await eventually(async () => (await open().then((d) => { d.socket.close(); return d.answer; })) === 'connection_ack');
    b.socket.close();
    other.close();
  });

  it('refuses a message above the payload limit by closing with 1009', async () => {
    const socket = await initialised('big-sender');
    const c = closed(socket);
    socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: `{ me { id } } # ${'x'.repeat(70 * 1024)}` } }));
    expect((await c).code).toBe(1009);
  });

  it('caps the operations of one socket and accepts new ones as others end', async () => {
    await openAccount(t.app, 'capped');
    const client = t.app.ws({ sub: 'capped' });
    const subs = [1, 2, 3].map(() => subscribe(client, BalanceChangedDocument));
    await untilLive(subs[2], () => t.app.gql(SetLowCreditThresholdDocument, { threshold: 5 }, { sub: 'capped' }));
    const fourth = subscribe(client, BalanceChangedDocument);
    await eventually(() => fourth.errors.length > 0);
    expect(fourth.errors).toEqual([[{ message: 'At most 3 operations at a time on one connection', extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' } }]]);
    expect(subs.map((x) => x.errors)).toEqual([[], [], []]);
    subs[0].unsubscribe();
    await new Promise((r) => setTimeout(r, 100));
    const fifth = subscribe(client, BalanceChangedDocument);
    await untilLive(fifth, () => t.app.gql(SetLowCreditThresholdDocument, { threshold: 5 }, { sub: 'capped' }));
    expect(fifth.errors).toEqual([]);
    await client.dispose();
  });

  it('refuses a variable of the wrong type with BAD_USER_INPUT naming the variable, also once the document is known (its cost cached)', async () => {
    const socket = await initialised('typo-vars');
    const messages: Array<{ id: string; type: string; payload: unknown }> = [];
    socket.on('message', (m) => messages.push(JSON.parse(m.toString())));
    const query = 'subscription ($jobId: ID!) { jobUpdated(jobId: $jobId) { id } }';
    socket.send(JSON.stringify({ id: 'v0', type: 'subscribe', payload: { query, variables: { jobId: 'not-a-job' } } }));
    await new Promise((r) => setTimeout(r, 200)); // v0 is accepted (and its cost kept) before v1 arrives
    socket.send(JSON.stringify({ id: 'v1', type: 'subscribe', payload: { query, variables: { jobId: [] } } }));
    await eventually(() => messages.some((m) => m.id === 'v1'));
    const answer = messages.find((m) => m.id === 'v1')!;
    const errors = (answer.type === 'next' ? (answer.payload as { errors: unknown[] }).errors : answer.payload) as Array<{ message: string; extensions: { code: string } }>;
    expect(errors.map((e) => [e.message, e.extensions.code])).toEqual([['Variable "$jobId" got invalid value []; ID cannot represent value: []', 'BAD_USER_INPUT']]);
    socket.close();
  });

  it('drops a subscriber that stops reading once its backlog passes the bound, instead of growing memory', async () => {
    await openAccount(t.app, 'slow');
    const grants = (n: number) =>
      t.app.audit.query(
        `SELECT count(*) FROM generate_series(1, $1::int) g,
           LATERAL ledger_grant('slow', 1, 'ADJUSTMENT', 'ADJUSTMENT', 'flood ' || g, NULL, NULL, NULL, NULL, 'test', now())`,
        [n],
      );
    await grants(100); // every event below then carries 100 lots or more (15 KB and up)
    const socket = await initialised('slow');
    let received = 0;
    socket.on('message', () => received++);
    socket.send(JSON.stringify({ id: 's1', type: 'subscribe', payload: { query: 'subscription { balanceChanged { available lots { id source granted remaining expiresAt createdAt } } }' } }));
    // Make sure the subscription is live, then stop reading.
    await eventually(async () => {
      await t.app.gql(SetLowCreditThresholdDocument, { threshold: 5 }, { sub: 'slow' });
      await new Promise((r) => setTimeout(r, 50));
      return received > 0;
    }, 15000);
    // A subscriber that reads keeps up with a burst below the bound and is not dropped.
    const seen = received;
    await grants(20);
    await eventually(() => received >= seen + 20);
    expect(t.app.server.wsConnections()).toBeGreaterThanOrEqual(1);
    const c = closed(socket);
    const before = t.app.server.wsConnections();
    (socket as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    // 2,000 changes in one transaction: 2,000 events of 15 KB and more once rendered — far more
    // than the socket buffers hold — so the events the subscriber has not taken pile up past the
    // bound (16 KiB of events here).
    await grants(2000);
    await eventually(() => t.app.server.wsConnections() < before, 30000);
    (socket as unknown as { _socket: { resume(): void } })._socket.resume();
    const closeEvent = await c;
    expect(closeEvent.code).toBe(1006); // dropped, not closed politely
    expect(received).toBeLessThan(2000);
    // Other sockets are unaffected.
    const fine = subscribe(t.app.ws({ sub: 'slow' }), BalanceChangedDocument);
    await untilLive(fine, () => t.app.gql(SetLowCreditThresholdDocument, { threshold: 5 }, { sub: 'slow' }));
    await fine.dispose();
  });
});
