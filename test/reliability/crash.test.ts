/**
 * Crash of the API under load: the service (src/main.ts, a real child process) is killed with
 * SIGKILL at seeded random moments while clients send keyed mutations, and started again on
 * the same database and port. Clients retry every unanswered request with its idempotency key
 * until it is answered. Afterwards every acknowledged change is in the ledger exactly once,
 * no key produced more than one change, and each balance is its starting balance plus the
 * changes the clients were told about.
 */
import { Pool } from 'pg';
import { freePort } from '../../src/common/db/embedded-postgres';
import { startAuditor } from '../helpers/auditor';
import { scale, seedFor } from '../helpers/scale';
import { createTestDatabase } from '../helpers/test-app';
import { ApiProcess, IMPOSSIBLE_DEBIT, auditPool, baseline, KeyedLoad, prepareAccounts, reconcile, failureSummary, rng, sleep } from './crash-support';

const CRASHES = scale(3, 24);
/** Further kills while the restarted process is still starting (loading, connecting, migrating). */
const STARTUP_KILLS = scale(1, 6);
const CLIENTS = scale(6, 8);
const PER_CLIENT = scale(30, 120);
const ACCOUNTS = ['crash-u1', 'crash-u2', 'crash-u3'];

let api: ApiProcess;
let db: Pool;

beforeAll(async () => {
  const url = await createTestDatabase();
  db = auditPool(url);
  api = new ApiProcess(await freePort(), { DATABASE_URL: url, LOG_LEVEL: 'warn', SIMULATED_WORKER: '0', DB_POOL_SIZE: '10' });
  await api.start();
}, 90000);

afterAll(async () => {
  await api?.stop();
  await db?.end();
});

it(`loses no acknowledged change and applies none twice across ${CRASHES + STARTUP_KILLS} kill -9 crashes of the API (under keyed load and while starting)`, async () => {
  const seed = seedFor('crash', 6001);
  const r = rng(seed);
  await prepareAccounts(api.base, ACCOUNTS, 1000);
  const base = await baseline(db, ACCOUNTS);
  const audit = startAuditor(db, 500);
  const total = CLIENTS * PER_CLIENT;
  // Crash i when this many operations have been answered (spread over the run), plus a jitter
  // of up to 25 ms so the kill lands while other requests are in flight.
  const points = Array.from({ length: CRASHES }, (_, i) => Math.floor(((i + 0.25 + 0.5 * r()) / (CRASHES + 0.5)) * total));
  const jitters = points.map(() => Math.floor(r() * 25));
  // After which crashes the next start is killed too, and how long after it was spawned.
  const startupKillAfter = new Map(Array.from({ length: STARTUP_KILLS }, (_, k) => [Math.floor(((k + 1) * CRASHES) / (STARTUP_KILLS + 1)), 300 + Math.floor(r() * 2700)]));

  const started = Date.now();
  const load = new KeyedLoad(api.base, { clients: CLIENTS, accounts: ACCOUNTS, seed, tag: `k${seed}`, upSince: () => api.readyAt });
  load.start(PER_CLIENT);
  let crashes = 0;
  let startupCrashes = 0;
  let interruptedInFlight = 0;
  for (let i = 0; i < CRASHES; i++) {
    await load.untilAnswered(points[i]);
    await sleep(jitters[i]);
    interruptedInFlight += load.inFlight();
    await api.kill9();
    crashes++;
    const early = startupKillAfter.get(i);
    if (early !== undefined) {
      api.spawn();
      await sleep(early);
      await api.kill9();
      startupCrashes++;
    }
    await api.start();
  }
  await load.finished();
  const violationsDuring = await audit.stop();
  const rec = await reconcile(db, load.ops, base);
  const elapsed = Date.now() - started;

  process.stdout.write(
    `[crash] seed ${seed}: ${crashes + startupCrashes} crashes survived (${crashes} under load, ${startupCrashes} while starting), ${load.ops.length} operations (${rec.applied} applied, ${rec.refused} refused), ` +
      `${interruptedInFlight} requests in flight at the kills, ${rec.retried} retried with their key, ${rec.replayedAfterLoss} committed before their answer was lost and replayed, ` +
      `${load.errorAnswers} error answers (unanswered attempts: ${failureSummary(load.ops)}), ${rec.entries} ledger entries, ${audit.passes()} audit passes, ` +
      `restarts ${api.startMs.slice(1).join('/')} ms, ${elapsed} ms\n`,
  );
  expect(rec.problems).toEqual([]);
  expect(violationsDuring).toEqual([]);
  expect(crashes).toBe(CRASHES);
  expect(startupCrashes).toBe(STARTUP_KILLS);
  expect(api.starts).toBe(CRASHES + STARTUP_KILLS + 1);
  expect(load.ops).toHaveLength(total);
  expect(load.answered).toBe(total);
  const impossible = load.ops.filter((o) => o.kind === 'adjust' && o.amount === -IMPOSSIBLE_DEBIT).length;
  expect(impossible).toBeGreaterThan(0);
  expect(rec.refused).toBe(impossible);
  expect(rec.applied).toBe(total - impossible);
  expect(rec.entries).toBe(rec.applied);
  expect(load.errorAnswers).toBe(0);
  expect(audit.passes()).toBeGreaterThan(0);
}, scale(120000, 900000));
