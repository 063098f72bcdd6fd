/**
 * npm run bench:subscribers — live events at scale on one instance. For 1,000 and 10,000
 * subscribers (BENCH_SUBSCRIBERS, comma-separated), each on its own account with its own
 * websocket (graphql-ws client) subscribed to balanceChanged:
 * - memory of the server per connection (RSS growth / connections);
 * - time from sending a committing mutation (adjustCredits) to the push reaching the
 *   subscriber, p50 and p99, over BENCH_EVENTS changes on random accounts at BENCH_RATE per s;
 * - events lost (expected pushes that never arrived).
 */
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { createClient, type Client as WsClient } from 'graphql-ws';
import { Client as PgClient } from 'pg';
import WebSocket from 'ws';
import { signToken } from '../src/common/auth/jwt';
import { Role } from '../src/common/auth/role.enum';
import { freePort } from '../src/common/db/embedded-postgres';
import { BENCH_PAYMENTS, database, dropDatabase, ROOT, rssBytes, SECRET, startChild, stopChild } from './support';

const SIZES = (process.env.BENCH_SUBSCRIBERS ?? '1000,10000').split(',').map(Number);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 2000);
const RATE = Number(process.env.BENCH_RATE ?? 200);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function run(n: number): Promise<string> {
  const ids = Array.from({ length: n }, (_, i) => `sub-${i}`);
  const db = await database(ids);
  const port = await freePort();
  const server = await startChild(
    ['dist/src/main.js'],
    {
      DATABASE_URL: db.url, JWT_SECRET: SECRET, PORT: String(port), LOG_LEVEL: 'warn', NODE_ENV: 'production', ...BENCH_PAYMENTS, SIMULATED_WORKER: '0', JOB_SWEEP_INTERVAL_MS: '3600000',
      // The operator makes every change: above a person's rate limit; as many subscribers from one address as the run needs.
      RATE_LIMIT_ACCOUNT_MUTATIONS: '100000000', RATE_LIMIT_ADDRESS_MUTATIONS: '100000000', RATE_LIMIT_ADDRESS_SUBSCRIBES: '100000000', RATE_LIMIT_ACCOUNT_SUBSCRIBES: '100000000',
    },
    `http://127.0.0.1:${port}/readyz`,
  );
  const rssBefore = rssBytes(server.pid!);
  /** Send times of changes per account not pushed yet (pushes of one account come in commit order). */
  const pending = new Map<string, number[]>();
  const latencies: number[] = [];
  let received = 0;
  const clients: WsClient[] = [];
  const live = new Set<string>();

  // Connect and subscribe, 200 at a time.
  for (let i = 0; i < n; i += 200) {
    await Promise.all(
      ids.slice(i, i + 200).map(async (id) => {
        const token = await signToken(SECRET, id, Role.USER);
        const client = createClient({ url: `ws://127.0.0.1:${port}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${token}` } });
        clients.push(client);
        client.subscribe<{ balanceChanged: { available: number } }>(
          { query: 'subscription { balanceChanged { available } }' },
          {
            next: (v) => {
              const now = performance.now();
              live.add(id);
              received++;
              const sentAt = pending.get(id)?.shift();
              if (sentAt !== undefined) latencies.push(now - sentAt);
            },
            error: () => undefined,
            complete: () => undefined,
          },
        );
      }),
    );
  }
  // Every subscription live: one change per account (through the database, all at once) must reach each.
  const adminToken = await signToken(SECRET, 'bench-admin', Role.ADMIN);
  const pg = new PgClient({ connectionString: db.url });
  await pg.connect();
  const deadline = Date.now() + 120_000;
  while (live.size < n && Date.now() < deadline) {
    const missing = ids.filter((id) => !live.has(id));
    await pg.query(`SELECT count(*) FROM unnest($1::text[]) id, LATERAL ledger_grant(id, 1, 'ADJUSTMENT', 'ADJUSTMENT', 'probe ' || id, NULL, NULL, NULL, NULL, 'bench', now())`, [missing]);
    await new Promise((r) => setTimeout(r, 1000));
  }
  await pg.end();
  await new Promise((r) => setTimeout(r, 1000));
  const rssAfter = rssBytes(server.pid!);
  received = 0;

  // Changes through the API on random accounts, at a steady rate; each push is timed from the send.
  const url = `http://127.0.0.1:${port}/graphql`;
  const interval = 1000 / RATE;
  const started = performance.now();
  const inflight: Promise<void>[] = [];
  for (let k = 0; k < EVENTS; k++) {
    const id = ids[Math.floor(Math.random() * n)];
    const at = started + k * interval;
    const wait = at - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const list = pending.get(id) ?? [];
    list.push(performance.now());
    pending.set(id, list);
    inflight.push(
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
        body: JSON.stringify({ query: `mutation { adjustCredits(input: { accountId: "${id}", amount: -1, reason: "bench" }) { entry { balanceAfter } } }` }),
      })
        .then((r) => r.json())
        .then((body: any) => {
          if (!body.data?.adjustCredits?.entry) throw new Error(`change refused: ${JSON.stringify(body)}`);
        }),
    );
  }
  await Promise.all(inflight);
  await new Promise((r) => setTimeout(r, 3000));
  const lost = [...pending.values()].reduce((sum, l) => sum + l.length, 0);
  latencies.sort((x, y) => x - y);
  for (const c of clients) await c.dispose();
  await stopChild(server);
  await dropDatabase(db);
  const perConn = (rssAfter - rssBefore) / n / 1024;
  return `| ${n} | ${latencies.length} | ${percentile(latencies, 50).toFixed(1)} | ${percentile(latencies, 99).toFixed(1)} | ${perConn.toFixed(1)} | ${lost} | ${received} |`;
}

async function main(): Promise<void> {
  const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('build failed');
  process.stdout.write(`subscribers bench: ${EVENTS} changes at ${RATE}/s per size\n\n`);
  const rows: string[] = [];
  for (const n of SIZES) {
    rows.push(await run(n));
    process.stdout.write(`${rows[rows.length - 1]}\n`);
  }
  process.stdout.write('\n| subscribers | pushes timed | p50 ms | p99 ms | server KiB per connection | events lost | pushes received |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n');
  for (const r of rows) process.stdout.write(`${r}\n`);
}

main().catch((e) => {
  process.stderr.write(`${e?.stack ?? e}\n`);
  process.exit(1);
});
