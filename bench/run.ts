/**
 * npm run bench — startGeneration throughput against two baselines measured in the same run:
 *   (a) startGeneration through the real server, spread over 200 accounts and on one hot account;
 *   (b) the ceiling of our stack: bench/minimal-server.ts (express + Apollo + the same bearer
 *       check) whose one mutation is the bare debit as one statement;
 *   (c) the database's own limit: pgbench running that debit as BEGIN; UPDATE; INSERT; END;
 *   (d) pgbench on the ledger's own debit function (prepared): lots, entry and event, as a start runs it.
 * (a) also runs on one workspace whose 50 members start at once (its pool is the hot row).
 * All at BENCH_CONNECTIONS (32) concurrent connections, on the same database and pool size.
 * Figures are printed as ratios; the machines are shared and noisy, so only ratios compare.
 */
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { signToken } from '../src/common/auth/jwt';
import { Role } from '../src/common/auth/role.enum';
import { freePort } from '../src/common/db/embedded-postgres';
import { BENCH_PAYMENTS, benchWorkspace, cpuTicks, database, dropDatabase, postgresTicks, ROOT, SECRET, startChild, stopChild, type Result } from './support';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 200);
const POOL = Number(process.env.DB_POOL_SIZE ?? 20);
/** Seconds of load before each server is measured (JIT, caches, pool). */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 5);
const WORKSPACE = 'workspace:00000000-0000-4000-8000-00000000be00';

let pgDir: string | undefined; // the embedded cluster, whose processes' CPU is counted

async function load(name: string, url: string, tokens: string[], body: string, ok: (body: string) => boolean, seconds = SECONDS, serverPid?: number): Promise<Result> {
  let i = 0;
  let errors = 0;
  const cpu0 = serverPid ? cpuTicks(serverPid) : 0;
  const db0 = postgresTicks(pgDir);
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        setupRequest: (req) => ({
          ...req,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[i++ % tokens.length]}` },
          body,
        }),
        onResponse: (status, resBody) => {
          if (status !== 200 || !ok(resBody)) errors++;
        },
      },
    ],
  });
  const total = result.requests.total || 1;
  const tick = 1000 / 100; // ms per clock tick (USER_HZ 100)
  return {
    name, rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: errors + result.errors + result.non2xx,
    serverCpu: serverPid ? ((cpuTicks(serverPid) - cpu0) * tick) / total : undefined,
    dbCpu: ((postgresTicks(pgDir) - db0) * tick) / total,
  };
}

function pgbench(name: string, url: string, file: string, prepared = false): Result | undefined {
  const bin = ['pgbench', ...['18', '17', '16', '15'].map((v) => `/usr/lib/postgresql/${v}/bin/pgbench`)].find(
    (b) => b === 'pgbench' ? spawnSync('pgbench', ['--version']).status === 0 : existsSync(b),
  );
  if (!bin) {
    process.stdout.write('pgbench not found: (c) skipped (install postgresql-client / postgresql-contrib)\n');
    return undefined;
  }
  const u = new URL(url);
  const r = spawnSync(bin, ['-n', ...(prepared ? ['-M', 'prepared'] : []), '-c', String(CONNECTIONS), '-j', '2', '-T', String(SECONDS), '-f', file, '-r', u.pathname.slice(1)], {
    env: { ...process.env, PGHOST: u.hostname, PGPORT: u.port, PGUSER: decodeURIComponent(u.username), PGPASSWORD: decodeURIComponent(u.password) },
    encoding: 'utf8',
  });
  const tps = /tps = ([\d.]+)/.exec(r.stdout);
  const lat = /latency average = ([\d.]+) ms/.exec(r.stdout);
  const failed = /number of failed transactions: (\d+)/.exec(r.stdout);
  if (!tps) {
    process.stdout.write(`pgbench failed:\n${r.stdout}\n${r.stderr}\n`);
    return undefined;
  }
  return { name, rps: Number(tps[1]), p50: lat ? Number(lat[1]) : null, p99: null, errors: failed ? Number(failed[1]) : 0 };
}

function fmt(n: number | null, digits = 0): string {
  return n === null ? '-' : n.toFixed(digits);
}

async function main(): Promise<void> {
  const started = Date.now();
  process.stdout.write(`bench: ${CONNECTIONS} connections, ${SECONDS} s per run, ${ACCOUNTS} accounts, pool ${POOL}; ${os.cpus().length} CPUs (${os.cpus()[0]?.model})\n`);
  // Servers run compiled, as in production.
  const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('build failed');
  const db = await database([...Array.from({ length: ACCOUNTS }, (_, i) => `bench-${i}`), 'bench-hot']);
  pgDir = db.pgDir;
  const spreadTokens = await Promise.all(Array.from({ length: ACCOUNTS }, (_, i) => signToken(SECRET, `bench-${i}`, Role.USER)));
  const hotTokens = [await signToken(SECRET, 'bench-hot', Role.USER)];
  const members = Array.from({ length: 50 }, (_, i) => `bench-member-${i}`);
  await benchWorkspace(db.url, WORKSPACE, members);
  const memberTokens = await Promise.all(members.map((m) => signToken(SECRET, m, Role.USER)));
  const results: Result[] = [];
  const env = { DATABASE_URL: db.url, JWT_SECRET: SECRET, DB_POOL_SIZE: String(POOL), LOG_LEVEL: 'warn', NODE_ENV: 'production', ...BENCH_PAYMENTS };

  // (a) the real server
  const port = await freePort();
  // The hot account makes thousands of starts a second: its rate limit is raised so the limiter
  // runs (leases from the shared counter) without refusing, and its cost is in the figures.
  const limits = { RATE_LIMIT_ACCOUNT_MUTATIONS: '100000000', RATE_LIMIT_ADDRESS_MUTATIONS: '100000000' };
  const server = await startChild(['dist/src/main.js'], { ...env, ...limits, PORT: String(port), SIMULATED_WORKER: '0', JOB_SWEEP_INTERVAL_MS: '3600000' }, `http://127.0.0.1:${port}/readyz`);
  const start = JSON.stringify({
    query: 'mutation($i: StartGenerationInput!) { startGeneration(input: $i) { job { id } userErrors { code } } }',
    variables: { i: { settings: { type: 'IMAGE', imageQuality: 'STANDARD' }, prompt: 'a lighthouse at dusk' } },
  });
  const accepted = (b: string) => b.includes('"userErrors":[]');
  const url = `http://127.0.0.1:${port}/graphql`;
  await load('warm-up', url, spreadTokens, start, accepted, WARMUP);
  results.push(await load('(a) startGeneration, spread', url, spreadTokens, start, accepted, SECONDS, server.pid));
  results.push(await load('(a) startGeneration, hot account', url, hotTokens, start, accepted, SECONDS, server.pid));
  // One workspace, 50 members starting at once (each under a monthly limit it never reaches): the pool's row is the hot one.
  const startInWorkspace = JSON.stringify({ ...JSON.parse(start), variables: { i: { ...JSON.parse(start).variables.i, workspaceId: WORKSPACE } } });
  results.push(await load('(a) startGeneration, hot workspace (50 members)', url, memberTokens, startInWorkspace, accepted, SECONDS, server.pid));
  await stopChild(server);

  // (b) the minimal server on the same stack
  const mport = await freePort();
  const minimal = await startChild(['dist/bench/minimal-server.js'], { ...env, PORT: String(mport) }, `http://127.0.0.1:${mport}/readyz`);
  const debit = JSON.stringify({ query: 'mutation { debit(amount: 1) }' });
  const debited = (b: string) => /"debit":\d+/.test(b);
  const murl = `http://127.0.0.1:${mport}/graphql`;
  await load('warm-up', murl, spreadTokens, debit, debited, WARMUP);
  results.push(await load('(b) minimal stack debit, spread', murl, spreadTokens, debit, debited, SECONDS, minimal.pid));
  results.push(await load('(b) minimal stack debit, hot account', murl, hotTokens, debit, debited, SECONDS, minimal.pid));
  await stopChild(minimal);

  // (c) pgbench: the same debit as a plain transaction
  const dir = await mkdtemp(path.join(os.tmpdir(), 'credits-pgbench-'));
  const script = (account: string) => `${account}
BEGIN;
UPDATE accounts SET available = available - 1 WHERE id = :aid AND available >= 1;
INSERT INTO ledger_entries (account_id, kind, amount, balance_after, description, created_at) VALUES (:aid, 'DEBIT', -1, 0, 'bench', now());
END;
`;
  await writeFile(path.join(dir, 'spread.sql'), script(`\\set n random(0, ${ACCOUNTS - 1})`).replace(/:aid/g, `'bench-' || :n`));
  await writeFile(path.join(dir, 'hot.sql'), script('').replace(/:aid/g, `'bench-hot'`));
  const c1 = pgbench('(c) pgbench BEGIN/UPDATE/INSERT/END, spread', db.url, path.join(dir, 'spread.sql'));
  const c2 = pgbench('(c) pgbench BEGIN/UPDATE/INSERT/END, hot account', db.url, path.join(dir, 'hot.sql'));
  // (d) the ledger's own debit function, prepared, with its lots, entry and event (what a start runs under its lock).
  const ledger = (account: string) => `${account}\nSELECT ok FROM ledger_debit(:aid, 1, 'DEBIT', 'bench', NULL, NULL, NULL, NULL, now());\n`;
  await writeFile(path.join(dir, 'ledger-spread.sql'), ledger(`\\set n random(0, ${ACCOUNTS - 1})`).replace(/:aid/g, `'bench-' || :n`));
  await writeFile(path.join(dir, 'ledger-hot.sql'), ledger('').replace(/:aid/g, `'bench-hot'`));
  const d1 = pgbench('(d) pgbench ledger_debit (prepared), spread', db.url, path.join(dir, 'ledger-spread.sql'), true);
  const d2 = pgbench('(d) pgbench ledger_debit (prepared), hot account', db.url, path.join(dir, 'ledger-hot.sql'), true);
  for (const c of [c1, c2, d1, d2]) if (c) results.push(c);
  await rm(dir, { recursive: true, force: true });

  process.stdout.write('\n| measurement | per second | p50 ms | p99 ms | errors | server CPU ms/req | PostgreSQL CPU ms/req |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n');
  for (const r of results) {
    process.stdout.write(`| ${r.name} | ${fmt(r.rps)} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${r.errors} | ${fmt(r.serverCpu ?? null, 2)} | ${fmt(r.dbCpu ?? null, 2)} |\n`);
  }
  const get = (prefix: string) => results.find((r) => r.name.startsWith(prefix));
  const aS = get('(a) startGeneration, spread')!;
  const aH = get('(a) startGeneration, hot account')!;
  const aW = get('(a) startGeneration, hot workspace')!;
  const bS = get('(b) minimal stack debit, spread')!;
  const bH = get('(b) minimal stack debit, hot')!;
  const cS = get('(c) pgbench BEGIN/UPDATE/INSERT/END, spread');
  const cH = get('(c) pgbench BEGIN/UPDATE/INSERT/END, hot');
  process.stdout.write('\nratios (targets: spread ≥ 0.6 × (b); hot ≥ 0.8 × (c); (a) spread p99 < 50 ms)\n');
  process.stdout.write(`  (a) spread / (b) spread = ${(aS.rps / bS.rps).toFixed(2)}\n`);
  process.stdout.write(`  (a) hot / (b) hot       = ${(aH.rps / bH.rps).toFixed(2)}\n`);
  if (cH) process.stdout.write(`  (a) hot / (c) hot       = ${(aH.rps / cH.rps).toFixed(2)}\n`);
  if (cH) process.stdout.write(`  (a) hot workspace / (c) hot = ${(aW.rps / cH.rps).toFixed(2)}   (50 members of one workspace)\n`);
  if (cS) process.stdout.write(`  (a) spread / (c) spread = ${(aS.rps / cS.rps).toFixed(2)}\n`);
  const dS = get('(d) pgbench ledger_debit (prepared), spread');
  const dH = get('(d) pgbench ledger_debit (prepared), hot');
  if (dS) process.stdout.write(`  (a) spread / (d) spread = ${(aS.rps / dS.rps).toFixed(2)}   (the ledger function itself, prepared)\n`);
  if (dH) process.stdout.write(`  (a) hot / (d) hot       = ${(aH.rps / dH.rps).toFixed(2)}\n`);
  process.stdout.write(`  (a) spread p99          = ${fmt(aS.p99, 1)} ms\n`);

  await dropDatabase(db);
  process.stdout.write(`\ndone in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
}

main().catch((e) => {
  process.stderr.write(`${e?.stack ?? e}\n`);
  process.exit(1);
});
