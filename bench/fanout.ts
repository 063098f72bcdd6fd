/**
 * npm run bench:fanout — what live subscribers cost the server per change. A sustained run of
 * startGeneration at BENCH_FANOUT_RATE per second on BENCH_FANOUT_ACCOUNTS accounts, measured
 * three times in one run on the same database, each on a fresh server:
 *   (none)     no subscribers;
 *   (shared)   BENCH_FANOUT_PER_ACCOUNT subscribers per account (sockets of one user), each with
 *              balanceChanged and jobUpdated — an event's selection run once for them all;
 *   (unshared) the same with WS_SHARED_EXECUTION=0 — run once per subscriber.
 * Figures: server CPU ms per start, events pushed per start, starts that failed; the ratios of
 * (shared) and (unshared) to (none). A start pushes one job event and one balance event to each
 * subscriber of its account.
 */
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { createClient, type Client as WsClient } from 'graphql-ws';
import WebSocket from 'ws';
import { signToken } from '../src/common/auth/jwt';
import { Role } from '../src/common/auth/role.enum';
import { freePort } from '../src/common/db/embedded-postgres';
import { BENCH_PAYMENTS, cpuTicks, database, dropDatabase, ROOT, SECRET, startChild, stopChild } from './support';

const ACCOUNTS = Number(process.env.BENCH_FANOUT_ACCOUNTS ?? 100);
const PER_ACCOUNT = Number(process.env.BENCH_FANOUT_PER_ACCOUNT ?? 10);
const RATE = Number(process.env.BENCH_FANOUT_RATE ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const TICK_MS = 10; // USER_HZ 100

interface Phase {
  name: string;
  cpuPerStart: number;
  pushesPerStart: number;
  failed: number;
  starts: number;
}

async function phase(name: string, dbUrl: string, ids: string[], subscribers: number, env: Record<string, string>): Promise<Phase> {
  const port = await freePort();
  const server = await startChild(
    ['dist/src/main.js'],
    {
      DATABASE_URL: dbUrl, JWT_SECRET: SECRET, PORT: String(port), LOG_LEVEL: 'warn', NODE_ENV: 'production', ...BENCH_PAYMENTS,
      SIMULATED_WORKER: '0', JOB_SWEEP_INTERVAL_MS: '3600000', RATE_LIMIT_ACCOUNT_MUTATIONS: '100000000', RATE_LIMIT_ADDRESS_MUTATIONS: '100000000',
      RATE_LIMIT_ACCOUNT_SUBSCRIBES: '100000000', RATE_LIMIT_ADDRESS_SUBSCRIBES: '100000000', ...env,
    },
    `http://127.0.0.1:${port}/readyz`,
  );
  const tokens = new Map(await Promise.all(ids.map(async (id) => [id, await signToken(SECRET, id, Role.USER)] as const)));
  const clients: WsClient[] = [];
  let pushes = 0;
  let firsts = 0;
  for (const id of ids) {
    for (let k = 0; k < subscribers; k++) {
      const client = createClient({ url: `ws://127.0.0.1:${port}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${tokens.get(id)}` } });
      clients.push(client);
      const sink = { next: () => void pushes++, error: () => undefined, complete: () => undefined };
      client.subscribe({ query: 'subscription { balanceChanged { id available lowCreditThreshold } }' }, { ...sink, next: () => void (firsts++, pushes++) });
      client.subscribe({ query: 'subscription { jobUpdated { id status progress queuePosition credits } }' }, sink);
    }
  }
  // Every balance subscription sent its current value: all are live.
  const until = Date.now() + 60_000;
  while (firsts < ids.length * subscribers && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  pushes = 0;

  const url = `http://127.0.0.1:${port}/graphql`;
  const body = JSON.stringify({ query: 'mutation { startGeneration(input: { settings: { type: IMAGE, imageQuality: STANDARD }, prompt: "fan-out" }) { job { id } userErrors { code } } }' });
  const total = RATE * SECONDS;
  const interval = 1000 / RATE;
  let failed = 0;
  const cpu0 = cpuTicks(server.pid!);
  const started = performance.now();
  const inflight: Promise<void>[] = [];
  for (let k = 0; k < total; k++) {
    const wait = started + k * interval - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const id = ids[k % ids.length];
    inflight.push(
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.get(id)}` }, body })
        .then((r) => r.json())
        .then((b: any) => {
          if (!b.data?.startGeneration?.job) failed++;
        })
        .catch(() => void failed++),
    );
  }
  await Promise.all(inflight);
  // The pushes of the last starts are on their way: wait until they stop coming.
  let last = -1;
  while (pushes !== last) {
    last = pushes;
    await new Promise((r) => setTimeout(r, 500));
  }
  const cpu = (cpuTicks(server.pid!) - cpu0) * TICK_MS;
  for (const c of clients) await c.dispose();
  await stopChild(server);
  return { name, cpuPerStart: cpu / total, pushesPerStart: pushes / total, failed, starts: total };
}

async function main(): Promise<void> {
  const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('build failed');
  const ids = Array.from({ length: ACCOUNTS }, (_, i) => `fan-${i}`);
  const db = await database(ids);
  process.stdout.write(`fan-out bench: ${ACCOUNTS} accounts, ${PER_ACCOUNT} subscribers each (balanceChanged + jobUpdated), ${RATE} starts/s for ${SECONDS} s per phase\n\n`);
  const phases = [
    await phase('(none) no subscribers', db.url, ids, 0, {}),
    await phase(`(shared) ${PER_ACCOUNT} per account, one execution per operation`, db.url, ids, PER_ACCOUNT, {}),
    await phase(`(unshared) ${PER_ACCOUNT} per account, one execution per subscriber`, db.url, ids, PER_ACCOUNT, { WS_SHARED_EXECUTION: '0' }),
  ];
  await dropDatabase(db);
  process.stdout.write('| phase | starts | failed | pushes per start | server CPU ms per start | × (none) |\n| --- | ---: | ---: | ---: | ---: | ---: |\n');
  for (const p of phases) {
    process.stdout.write(`| ${p.name} | ${p.starts} | ${p.failed} | ${p.pushesPerStart.toFixed(1)} | ${p.cpuPerStart.toFixed(2)} | ${(p.cpuPerStart / phases[0].cpuPerStart).toFixed(2)} |\n`);
  }
}

main().catch((e) => {
  process.stderr.write(`${e?.stack ?? e}\n`);
  process.exit(1);
});
