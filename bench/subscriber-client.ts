/**
 * One load-generator process of `npm run bench:subscribers` (a process may hold at most 20,000
 * open files here, so the subscribers are spread over several). Told over IPC which accounts to
 * subscribe for and which instances to use, it opens one graphql-ws client per account (spread
 * over the instances), subscribes to balanceChanged, and reports every push with its arrival
 * time (performance.timeOrigin + performance.now(): one clock for every process on the machine).
 */
import { createClient, type Client as WsClient } from 'graphql-ws';
import WebSocket from 'ws';
import { signToken } from '../src/common/auth/jwt';
import { Role } from '../src/common/auth/role.enum';

interface Start {
  ids: string[];
  ports: number[];
  /** Index of this process's first account in the whole run (spreads accounts over instances). */
  offset: number;
  secret: string;
}

const now = () => performance.timeOrigin + performance.now();
const clients: WsClient[] = [];
/** Sockets opened again after their first (the server closed one, e.g. for a missed keep-alive pong). */
let reconnects = 0;
let batch: [string, number][] = [];

function flush(): void {
  if (batch.length) process.send!({ pushes: batch });
  batch = [];
}
setInterval(flush, 5).unref();

process.on('message', async (m: Start | { stop: true }) => {
  if ('stop' in m) {
    flush();
    await Promise.all(clients.map((c) => c.dispose()));
    process.send!({ stopped: true, reconnects }, () => process.exit(0));
    return;
  }
  let errors = 0;
  for (let i = 0; i < m.ids.length; i += 200) {
    await Promise.all(
      m.ids.slice(i, i + 200).map(async (id, k) => {
        const token = await signToken(m.secret, id, Role.USER);
        const port = m.ports[(m.offset + i + k) % m.ports.length];
        // Each batch waits for its sockets to be acknowledged before the next opens (no flood of connects).
        let acknowledged!: () => void;
        const connected = new Promise<void>((r) => (acknowledged = r));
        let opened = 0;
        const client = createClient({
          url: `ws://127.0.0.1:${port}/graphql`,
          webSocketImpl: WebSocket,
          retryAttempts: 5,
          connectionParams: { authorization: `Bearer ${token}` },
          on: { connected: () => (opened++ > 0 ? reconnects++ : acknowledged()), closed: () => acknowledged() },
        });
        clients.push(client);
        client.subscribe<{ balanceChanged: { available: number } }>(
          { query: 'subscription { balanceChanged { available } }' },
          { next: () => batch.push([id, now()]), error: () => errors++, complete: () => undefined },
        );
        await connected;
      }),
    );
  }
  process.send!({ subscribed: m.ids.length, errors });
});
