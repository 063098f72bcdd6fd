/**
 * npm run bench:subscribers [-- --instances 4 --subscribers 50000[,15000…]] — live events at
 * scale. For each size: a fresh database with one account per subscriber, `--instances` API
 * processes (compiled, production mode) on it, and the subscribers — one graphql-ws client and
 * socket each, subscribed to balanceChanged, spread over the instances — held by load-generator
 * processes of at most 10,000 sockets each (a process may hold at most 20,000 open files here).
 * Every subscription is proven live first (one change per account must reach it). Then
 * `--events` adjustCredits on random accounts at `--rate` per second, each sent to a random
 * instance; each push is timed from sending the mutation to the push arriving (so the figure
 * includes the mutation's own round trip: an upper bound of commit-to-push), and a push that
 * never arrives is lost. Memory: each instance's RSS growth while its sockets opened, divided
 * by its sockets.
 */
import 'reflect-metadata';
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client as PgClient } from 'pg';
import { signToken } from '../src/common/auth/jwt';
import { Role } from '../src/common/auth/role.enum';
import { freePort } from '../src/common/db/embedded-postgres';
import { BENCH_PAYMENTS, database, dropDatabase, ROOT, rssBytes, SECRET, startChild, stopChild } from './support';

const { values: args } = parseArgs({
  args: process.argv.slice(2),
  options: {
    instances: { type: 'string', default: process.env.BENCH_INSTANCES ?? '1' },
    subscribers: { type: 'string', default: process.env.BENCH_SUBSCRIBERS ?? '1000,10000' },
    events: { type: 'string', default: process.env.BENCH_EVENTS ?? '2000' },
    rate: { type: 'string', default: process.env.BENCH_RATE ?? '200' },
  },
});
const INSTANCES = Number(args.instances);
const SIZES = args.subscribers!.split(',').map(Number);
const EVENTS = Number(args.events);
const RATE = Number(args.rate);
const PER_GENERATOR = 10_000;

const now = () => performance.timeOrigin + performance.now();

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

interface Generator {
  child: ChildProcess;
  subscribed: Promise<{ subscribed: number; errors: number }>;
}

function generator(onPushes: (pushes: [string, number][]) => void): Generator {
  const child = fork(path.join(__dirname, 'subscriber-client.ts'), [], { execArgv: ['-r', 'ts-node/register/transpile-only'], cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let resolve!: (v: { subscribed: number; errors: number }) => void;
  const subscribed = new Promise<{ subscribed: number; errors: number }>((r) => (resolve = r));
  child.on('message', (m: { pushes?: [string, number][]; subscribed?: number; errors?: number }) => {
    if (m.pushes) onPushes(m.pushes);
    if (m.subscribed !== undefined) resolve({ subscribed: m.subscribed, errors: m.errors ?? 0 });
  });
  return { child, subscribed };
}

async function run(n: number): Promise<string> {
  const ids = Array.from({ length: n }, (_, i) => `sub-${i}`);
  const db = await database(ids);
  const ports: number[] = [];
  const servers: ChildProcess[] = [];
  for (let i = 0; i < INSTANCES; i++) {
    const port = await freePort();
    ports.push(port);
    servers.push(
      await startChild(
        ['dist/src/main.js'],
        {
          DATABASE_URL: db.url, JWT_SECRET: SECRET, PORT: String(port), LOG_LEVEL: 'warn', NODE_ENV: 'production', ...BENCH_PAYMENTS, SIMULATED_WORKER: '0', JOB_SWEEP_INTERVAL_MS: '3600000',
          DB_POOL_SIZE: String(Math.max(4, Math.floor(40 / INSTANCES))),
          // The operator makes every change: above a person's rate limit; as many subscribers from one address as the run needs.
          RATE_LIMIT_ACCOUNT_MUTATIONS: '100000000', RATE_LIMIT_ADDRESS_MUTATIONS: '100000000', RATE_LIMIT_ADDRESS_SUBSCRIBES: '100000000', RATE_LIMIT_ACCOUNT_SUBSCRIBES: '100000000',
        },
        `http://127.0.0.1:${port}/readyz`,
      ),
    );
  }
  const rssBefore = servers.map((s) => rssBytes(s.pid!));
  /** Send times of changes per account not pushed yet (pushes of one account come in commit order). */
  const pending = new Map<string, number[]>();
  const latencies: number[] = [];
  const live = new Set<string>();
  let received = 0;
  const onPushes = (pushes: [string, number][]) => {
    for (const [id, at] of pushes) {
      live.add(id);
      received++;
      const sentAt = pending.get(id)?.shift();
      if (sentAt !== undefined) latencies.push(at - sentAt);
    }
  };

  // Subscribe: several generator processes, each with at most PER_GENERATOR sockets.
  const generators: Generator[] = [];
  for (let i = 0; i < n; i += PER_GENERATOR) {
    const g = generator(onPushes);
    g.child.send({ ids: ids.slice(i, i + PER_GENERATOR), ports, offset: i, secret: SECRET });
    generators.push(g);
  }
  const opened = await Promise.all(generators.map((g) => g.subscribed));
  const subscribeErrors = opened.reduce((s, o) => s + o.errors, 0);

  // Every subscription live: one change per account (through the database, all at once) must reach each.
  const pg = new PgClient({ connectionString: db.url });
  await pg.connect();
  const deadline = Date.now() + 300_000;
  while (live.size < n && Date.now() < deadline) {
    const missing = ids.filter((id) => !live.has(id));
    for (let i = 0; i < missing.length; i += 5000) {
      await pg.query(`SELECT count(*) FROM unnest($1::text[]) id, LATERAL ledger_grant(id, 1, 'ADJUSTMENT', 'ADJUSTMENT', 'probe ' || id, NULL, NULL, NULL, NULL, 'bench', now())`, [missing.slice(i, i + 5000)]);
    }
    // Pushes of 50,000 probes take a few seconds to drain: wait before probing the missing again.
    await new Promise((r) => setTimeout(r, 5000));
  }
  await pg.end();
  if (live.size < n) throw new Error(`${n - live.size} of ${n} subscriptions never became live (${subscribeErrors} subscribe errors)`);
  await new Promise((r) => setTimeout(r, 2000));
  const rssAfter = servers.map((s) => rssBytes(s.pid!));

  // Changes through the API on random accounts, at a steady rate, each to a random instance:
  // first a warm-up (not timed: the instances' first requests compile their code paths), then the timed run.
  const adminToken = await signToken(SECRET, 'bench-admin', Role.ADMIN);
  const answers: number[] = [];
  const changes = async (count: number): Promise<void> => {
    const interval = 1000 / RATE;
    const started = performance.now();
    const inflight: Promise<void>[] = [];
    for (let k = 0; k < count; k++) {
      const id = ids[Math.floor(Math.random() * n)];
      const port = process.env.BENCH_SEND_TO ? ports[Number(process.env.BENCH_SEND_TO)] : ports[Math.floor(Math.random() * ports.length)];
      const wait = started + k * interval - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const list = pending.get(id) ?? [];
      const sentAt = now();
      list.push(sentAt);
      pending.set(id, list);
      inflight.push(
        fetch(`http://127.0.0.1:${port}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
          body: JSON.stringify({ query: `mutation { adjustCredits(input: { accountId: "${id}", amount: -1, reason: "bench" }) { entry { balanceAfter } } }` }),
        })
          .then((r) => r.json())
          .then((body: any) => {
            answers.push(now() - sentAt);
            if (!body.data?.adjustCredits?.entry) throw new Error(`change refused: ${JSON.stringify(body)}`);
          }),
      );
    }
    await Promise.all(inflight);
  };
  await changes(Math.min(1000, Math.ceil(EVENTS / 4)));
  await new Promise((r) => setTimeout(r, 5000));
  const warmLost = [...pending.values()].reduce((sum, l) => sum + l.length, 0);
  pending.clear();
  latencies.length = 0;
  answers.length = 0;
  received = 0;
  await changes(EVENTS);
  await new Promise((r) => setTimeout(r, 5000));
  const lost = warmLost + [...pending.values()].reduce((sum, l) => sum + l.length, 0);
  latencies.sort((x, y) => x - y);
  answers.sort((x, y) => x - y);
  let reconnects = 0;
  await Promise.all(
    generators.map(
      (g) =>
        new Promise<void>((resolve) => {
          g.child.on('message', (m: { reconnects?: number }) => (reconnects += m.reconnects ?? 0));
          g.child.once('exit', () => resolve());
          g.child.send({ stop: true });
          setTimeout(() => (g.child.kill('SIGKILL'), resolve()), 30_000).unref();
        }),
    ),
  );
  for (const s of servers) await stopChild(s);
  await dropDatabase(db);
  const perInstance = n / INSTANCES;
  const kib = rssAfter.map((a, i) => (a - rssBefore[i]) / perInstance / 1024);
  const kibAll = kib.reduce((s, x) => s + x, 0) / kib.length;
  return `| ${n} | ${INSTANCES} | ${generators.length} | ${latencies.length} | ${percentile(latencies, 50).toFixed(1)} | ${percentile(latencies, 99).toFixed(1)} | ${kibAll.toFixed(1)} (${kib.map((k) => k.toFixed(1)).join(' / ')}) | ${lost} | ${reconnects} | ${received} | ${percentile(answers, 50).toFixed(1)} / ${percentile(answers, 99).toFixed(1)} |`;
}

async function main(): Promise<void> {
  const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('build failed');
  process.stdout.write(`subscribers bench: ${EVENTS} changes at ${RATE}/s per size, ${INSTANCES} instance(s)\n\n`);
  const rows: string[] = [];
  for (const n of SIZES) {
    rows.push(await run(n));
    process.stdout.write(`${rows[rows.length - 1]}\n`);
  }
  process.stdout.write(
    '\n| subscribers | instances | generator processes | pushes timed | p50 ms | p99 ms | server KiB per connection (each instance) | events lost | sockets reconnected | pushes received | change answered p50 / p99 ms |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n',
  );
  for (const r of rows) process.stdout.write(`${r}\n`);
}

main().catch((e) => {
  process.stderr.write(`${e?.stack ?? e}\n`);
  process.exit(1);
});
