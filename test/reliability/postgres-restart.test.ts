/**
 * Restart of PostgreSQL under load. The API (a real child process) runs on a PostgreSQL of
 * the test's own, which is stopped for a few seconds and started again on the same port and
 * data folder while clients send keyed mutations and retry every unanswered one with its key.
 * The API process stays up, /healthz stays 200, /readyz is 503 while the database is away and
 * 200 after; keyed writes succeed within 10 s of the database returning; a websocket
 * subscriber gets balance events again; the lease sweep still runs; nothing is lost or doubled.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient, type Client as WsClient } from 'graphql-ws';
import type { Pool } from 'pg';
import WebSocket from 'ws';
import { Role } from '../../src/common/auth/role.enum';
import { freePort } from '../../src/common/db/embedded-postgres';
import { startAuditor } from '../helpers/auditor';
import { scale, seedFor } from '../helpers/scale';
import {
  ADMIN, ApiProcess, IMPOSSIBLE_DEBIT, auditPool, baseline, KeyedLoad, PgServer, post, prepareAccounts, probe, reconcile, failureSummary, sleep, tokenFor, type ExtraEntry, type Op,
} from './crash-support';

const RESTARTS = scale(2, 6);
const DOWN_MS = 3000;
const CLIENTS = scale(4, 6);
const ACCOUNTS = ['pgr-u1', 'pgr-u2', 'pgr-u3'];
/** Written only by the test's probes, so the balance its subscriber must end on is known. */
const SUBSCRIBER = 'pgr-sub';
const LEASE_SECONDS = 5;

let dataDir: string;
let pg: PgServer;
let api: ApiProcess;
let db: Pool;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'credits-pg-restart-'));
  pg = new PgServer(dataDir, await freePort());
  const url = await pg.start();
  db = auditPool(url);
  api = new ApiProcess(await freePort(), {
    DATABASE_URL: url,
    LOG_LEVEL: 'warn',
    SIMULATED_WORKER: '0',
    DB_POOL_SIZE: '10',
    JOB_SWEEP_INTERVAL_MS: '250',
    JOB_LEASE_SECONDS: String(LEASE_SECONDS),
  });
  await api.start();
  await prepareAccounts(api.base, [...ACCOUNTS, SUBSCRIBER], 1000);
}, 120000);

afterAll(async () => {
  await api?.stop();
  await db?.end();
  await pg?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** A graphql-ws subscriber of SUBSCRIBER's balance, live (an event seen) before it is returned. */
async function balanceSubscriber() {
  const closes: number[] = [];
  const ws: WsClient = createClient({
    url: `ws://127.0.0.1:${api.port}/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    connectionParams: async () => ({ authorization: `Bearer ${await tokenFor(SUBSCRIBER)}` }),
    on: { closed: (e) => closes.push((e as { code: number }).code) },
  });
  const events: { available: number }[] = [];
  const errors: unknown[] = [];
  const unsubscribe = ws.subscribe<{ balanceChanged: { available: number } }>(
    { query: 'subscription { balanceChanged { available } }' },
    { next: (v) => (v.data ? events.push(v.data.balanceChanged) : errors.push(v.errors)), error: (e) => errors.push(e), complete: () => undefined },
  );
  for (let i = 0; events.length === 0; i++) {
    if (i > 100) throw new Error(`the subscription never became live: ${JSON.stringify(errors)}`);
    await post(api.base, 'mutation($a: ID!) { adjustCredits(input: { accountId: $a, amount: 1, reason: "poke" }) { entry { id } } }', { a: SUBSCRIBER }, ADMIN, Role.ADMIN);
    await sleep(50);
  }
  return {
    events,
    errors,
    closes,
    /** The last event told this balance. */
    told: (n: number) => events.length > 0 && events[events.length - 1].available === n,
    async dispose() {
      unsubscribe();
      await ws.dispose();
    },
  };
}

const balanceOf = async (account: string) => Number((await db.query('SELECT available FROM accounts WHERE id = $1', [account])).rows[0].available);

interface Outage {
  mode: 'fast' | 'immediate';
  healthz: number[];
  readyz: number[];
  /**
   * From the database being up again to: /readyz 200; a keyed write answered; the subscriber
   * told the balance that write left (-1: never); the subscriber told of a later write.
   */
  readyMs: number;
  writeMs: number;
  convergeMs: number;
  eventMs: number;
  errorAnswers: number;
}

it(`keeps the API up through ${RESTARTS} PostgreSQL restart(s) under keyed load: readiness follows the database, writes resume within 10 s, events flow again, nothing lost or doubled`, async () => {
  const seed = seedFor('postgres-restart', 7001);
  // A subscriber of one account's balance, live before the load starts.
  const sub = await balanceSubscriber();
  const { closes, errors: subErrors } = sub;

  const base = await baseline(db, [...ACCOUNTS, SUBSCRIBER]);
  const audit = startAuditor(db, 500);
  const started = Date.now();
  const load = new KeyedLoad(api.base, { clients: CLIENTS, accounts: ACCOUNTS, seed, tag: `p${seed}`, thinkMs: 20, giveUpMs: 90000 });
  load.start();
  await sleep(1000);

  // A worker takes a job and never reports: its lease runs out during or after the outage,
  // and the lease sweep (which keeps running while the database is away) must refund it.
  const claim = await post(api.base, 'mutation { claimGenerationJob { id credits } }', {}, 'rel-worker', Role.WORKER);
  const leased = claim.data?.claimGenerationJob as { id: string; credits: number } | null;
  if (!leased) throw new Error(`no job to claim: ${JSON.stringify(claim)}`);
  const [{ account_id: leasedAccount }] = (await db.query('SELECT account_id FROM generation_jobs WHERE id = $1', [leased.id])).rows;
  const extra: ExtraEntry[] = [{ account: leasedAccount, kind: 'REFUND', amount: leased.credits, jobId: leased.id }];

  const outages: Outage[] = [];
  const newCallers: string[] = [];
  let probeSeq = 0;
  const keyed = (account: string, amount: number): Op => ({ client: -1, kind: 'adjust', account, key: `p${seed}-probe-${probeSeq++}`, amount, attempts: 0, failures: [] });
  for (let i = 0; i < RESTARTS; i++) {
    if (i > 0) await sleep(1500);
    const mode = i % 2 === 0 ? 'fast' : 'immediate';
    const errorsBefore = load.errorAnswers;
    await pg.stop(mode);
    const healthz: number[] = [];
    const readyz: number[] = [];
    const downUntil = Date.now() + DOWN_MS;
    while (Date.now() < downUntil) {
      const [h, r, fresh] = await Promise.all([
        probe(api.base, '/healthz'),
        probe(api.base, '/readyz'),
        // A caller this process has not seen yet: opening its account needs the database too.
        post(api.base, '{ me { id } }', {}, `pgr-new-${i}-${readyz.length}`, Role.USER),
      ]);
      healthz.push(h);
      readyz.push(r);
      newCallers.push(`${fresh.status} ${fresh.errors?.[0]?.extensions?.code ?? 'answered'}`);
      await sleep(200);
    }
    expect(api.alive()).toBe(true);
    await pg.start();
    const upAt = Date.now();
    while ((await probe(api.base, '/readyz')) !== 200) {
      if (Date.now() - upAt > 30000) throw new Error(`/readyz not 200 30 s after the database returned:\n${api.output().slice(-3000)}`);
      await sleep(50);
    }
    const readyMs = Date.now() - upAt;
    // The first write after the database returns lands on the subscriber's account, most
    // likely before this instance LISTENs again: the subscriber must still end up told the
    // balance it left, and then hear about the next change.
    const write = await load.execute(keyed(SUBSCRIBER, 2));
    const writeMs = write.answeredAt! - upAt;
    const afterWrite = await balanceOf(SUBSCRIBER);
    const told = sub.told;
    while (!told(afterWrite) && Date.now() - upAt < 10000) await sleep(20);
    const convergeMs = told(afterWrite) ? Date.now() - upAt : -1;
    await load.execute(keyed(SUBSCRIBER, 1));
    while (!told(afterWrite + 1) && Date.now() - upAt < 15000) await sleep(20);
    const eventMs = told(afterWrite + 1) ? Date.now() - upAt : -1;
    outages.push({ mode, healthz, readyz, readyMs, writeMs, convergeMs, eventMs, errorAnswers: load.errorAnswers - errorsBefore });
  }
  await sleep(1000);
  await load.stop();

  // The leased job is failed and refunded by the sweep.
  const leaseDeadline = Date.now() + (LEASE_SECONDS + 15) * 1000;
  let job: { status: string; refunded: boolean } | undefined;
  while (Date.now() < leaseDeadline) {
    job = (await db.query('SELECT status, refunded FROM generation_jobs WHERE id = $1', [leased.id])).rows[0];
    if (job?.status === 'FAILED') break;
    await sleep(200);
  }
  const violationsDuring = await audit.stop();
  const rec = await reconcile(db, load.ops, base, extra);
  await sub.dispose();

  process.stdout.write(
    `[postgres-restart] seed ${seed}: ${outages.length} restarts (${outages.map((o) => o.mode).join(', ')}), ${load.ops.length} operations ` +
      `(${rec.applied} applied, ${rec.refused} refused), ${rec.retried} retried with their key, ${rec.replayedAfterLoss} committed before their answer was lost, ` +
      `${load.errorAnswers} error answers (unanswered attempts: ${failureSummary(load.ops)}); after the database returned: /readyz 200 in ${outages.map((o) => o.readyMs).join('/')} ms, ` +
      `keyed write in ${outages.map((o) => o.writeMs).join('/')} ms, subscriber up to date in ${outages.map((o) => o.convergeMs).join('/')} ms, next event in ${outages.map((o) => o.eventMs).join('/')} ms; ` +
      `${audit.passes()} audit passes, ${Date.now() - started} ms\n`,
  );
  if (process.env.RELIABILITY_DUMP) process.stdout.write(api.output());
  // Requests that reached the API while the database was away were told to retry, never
  // answered with an internal error.
  const coded = load.ops.flatMap((o) => o.failures).filter((f) => f.startsWith('graphql:'));
  expect(coded.filter((f) => f !== 'graphql: SERVICE_UNAVAILABLE')).toEqual([]);
  // A caller's first request (its account opened in the request's context) is told the same.
  expect(newCallers.length).toBeGreaterThanOrEqual(5 * RESTARTS);
  expect(newCallers.filter((c) => c !== '503 SERVICE_UNAVAILABLE')).toEqual([]);
  for (const o of outages) {
    expect(o.healthz.every((s) => s === 200)).toBe(true);
    expect(o.readyz.length).toBeGreaterThanOrEqual(5);
    expect(o.readyz.filter((s) => s === 200)).toEqual([]);
    expect(o.readyz.every((s) => s === 503)).toBe(true);
    expect(o.writeMs).toBeLessThanOrEqual(10000);
    expect(o.convergeMs).toBeGreaterThanOrEqual(0);
    expect(o.convergeMs).toBeLessThanOrEqual(10000);
    expect(o.eventMs).toBeGreaterThanOrEqual(0);
    expect(o.eventMs).toBeLessThanOrEqual(10000);
  }
  expect(outages).toHaveLength(RESTARTS);
  expect(pg.starts).toBe(RESTARTS + 1);
  expect(api.starts).toBe(1);
  expect(api.alive()).toBe(true);
  expect(closes).toEqual([]);
  expect(subErrors).toEqual([]);
  expect(job).toEqual({ status: 'FAILED', refunded: true });
  expect(rec.problems).toEqual([]);
  expect(violationsDuring).toEqual([]);
  const impossible = load.ops.filter((o) => o.kind === 'adjust' && o.amount === -IMPOSSIBLE_DEBIT).length;
  expect(rec.refused).toBe(impossible);
  expect(rec.applied).toBe(load.ops.length - impossible);
  expect(rec.entries).toBe(rec.applied + extra.length);
}, scale(120000, 600000));

it(`survives its database connections being terminated ${scale(3, 12)} times under keyed load: requests retried with their keys, the event listener comes back, its subscriber ends on the right balance, nothing lost or doubled`, async () => {
  const seed = seedFor('postgres-terminate', 7101);
  const TERMINATIONS = scale(3, 12);
  const sub = await balanceSubscriber();
  const base = await baseline(db, [...ACCOUNTS, SUBSCRIBER]);
  const audit = startAuditor(db, 500);
  const started = Date.now();
  const load = new KeyedLoad(api.base, { clients: CLIENTS, accounts: ACCOUNTS, seed, tag: `t${seed}`, thinkMs: 20, giveUpMs: 60000 });
  load.start();
  let probeSeq = 0;
  const terminated: { pool: number; listener: number; convergeMs: number }[] = [];
  for (let i = 0; i < TERMINATIONS; i++) {
    await sleep(700);
    const terminate = async (app: string) =>
      (await db.query<{ n: number }>(`SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1`, [app])).rows[0].n;
    // The listener alone: a keyed change of the subscriber's account at once, most likely
    // committed before the listener is back (its pool connections are intact, so it is quick).
    const listener = await terminate('credits-events');
    const t0 = Date.now();
    await load.execute({ client: -1, kind: 'adjust', account: SUBSCRIBER, key: `t${seed}-probe-${probeSeq++}`, amount: 1, attempts: 0, failures: [] });
    const afterWrite = await balanceOf(SUBSCRIBER);
    while (!sub.told(afterWrite) && Date.now() - t0 < 10000) await sleep(20);
    const convergeMs = sub.told(afterWrite) ? Date.now() - t0 : -1;
    // Then the pool's connections, under load.
    await sleep(300);
    const pool = await terminate('credits-service');
    terminated.push({ pool, listener, convergeMs });
  }
  await sleep(500);
  await load.stop();
  const violationsDuring = await audit.stop();
  const rec = await reconcile(db, load.ops, base);
  await sub.dispose();

  process.stdout.write(
    `[postgres-terminate] seed ${seed}: ${terminated.length} rounds terminated ${terminated.reduce((a, t) => a + t.pool, 0)} pool and ` +
      `${terminated.reduce((a, t) => a + t.listener, 0)} listener connections; ${load.ops.length} operations (${rec.applied} applied, ${rec.refused} refused), ` +
      `${rec.retried} retried with their key, ${rec.replayedAfterLoss} committed before their answer was lost, unanswered attempts: ${failureSummary(load.ops)}; ` +
      `subscriber up to date in ${terminated.map((t) => t.convergeMs).join('/')} ms; ${audit.passes()} audit passes, ${Date.now() - started} ms\n`,
  );
  expect(terminated).toHaveLength(TERMINATIONS);
  // A request whose connection was terminated under it is told to retry, not an internal error.
  const coded = load.ops.flatMap((o) => o.failures).filter((f) => f.startsWith('graphql:'));
  expect(coded.filter((f) => f !== 'graphql: SERVICE_UNAVAILABLE')).toEqual([]);
  for (const t of terminated) {
    expect(t.listener).toBe(1);
    expect(t.pool).toBeGreaterThanOrEqual(1);
    expect(t.convergeMs).toBeGreaterThanOrEqual(0);
    expect(t.convergeMs).toBeLessThanOrEqual(10000);
  }
  expect(api.alive()).toBe(true);
  expect(api.starts).toBe(1);
  expect(sub.closes).toEqual([]);
  expect(sub.errors).toEqual([]);
  expect(rec.problems).toEqual([]);
  expect(violationsDuring).toEqual([]);
  const impossible = load.ops.filter((o) => o.kind === 'adjust' && o.amount === -IMPOSSIBLE_DEBIT).length;
  expect(rec.refused).toBe(impossible);
  expect(rec.applied).toBe(load.ops.length - impossible);
  expect(rec.entries).toBe(rec.applied);
}, scale(90000, 300000));
