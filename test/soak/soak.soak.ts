/**
 * npm run test:soak — the long soak (issue 16): about SOAK_MINUTES (60) on one PostgreSQL of
 * its own, with auditors watching every database throughout and after:
 * - a keyed storm (storm.ts) of every money-moving mutation — starts on own accounts and on
 *   workspace pools, operator adjustments, pack purchases, cancels, member limits, auto top-up
 *   on and off, and GPU workers claiming, completing, failing and abandoning jobs — against two
 *   API processes, one of them killed with SIGKILL at a time (some while starting), clients
 *   retrying every unanswered request with its key on the other;
 * - PostgreSQL stopped and started under that load, fast and immediate (crash recovery) in turn;
 * - the model-based test (test/reliability/model) run after run on its own database;
 * - streams of generated hostile inputs against production-configured servers.
 * Every round (one database restart) ends with the storm stopped and reconciled: every
 * acknowledged change in the ledger exactly once, nothing else but refunds and automatic
 * top-ups that the rules explain, each balance equal to what the answers and those give.
 *
 * The seed is printed; SEED=<n> plans the same run (the same operations, chaos schedule, model
 * sequences and hostile inputs; which request a kill interrupts still depends on timing).
 * SOAK_MINUTES=<m> runs a shorter soak (the targets are asserted only at full length).
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { Client, type Pool } from 'pg';
import { Role } from '../../src/common/auth/role.enum';
import { freePort } from '../../src/common/db/embedded-postgres';
import { startAuditor } from '../helpers/auditor';
import { startTestApp, type TestApp } from '../helpers/test-app';
import { ApiProcess, auditPool, PgServer, post, probe, rng, sleep } from '../reliability/crash-support';
import { executed, outcomes } from '../reliability/model/commands';
import { modelProperty, totalExecuted } from '../reliability/model/property';
import { loadCatalog } from '../reliability/model/system';
import { Gate } from './gate';
import { HostileStream } from './hostile';
import { ADMIN, reconcileRound, snapshot, Storm, topUpsSettled, type Cast, type Snapshot } from './storm';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 60);
const FULL = process.env.SOAK_MINUTES === undefined;
const TARGETS = { kills: 200, pgRestarts: 50, operations: 1_000_000, hostile: 100_000 };
/** Planned a little above each target, spread over the chaos window. */
const PLANNED_KILLS = Math.ceil((TARGETS.kills * 1.06 * MINUTES) / 60);
const PLANNED_RESTARTS = Math.max(1, Math.ceil((TARGETS.pgRestarts * 1.06 * MINUTES) / 60));
/** The time kept for the end: loops stopped, automatic purchases settled, the last reconciliation and audits (about 30 s). */
const CLOSE_MS = 45_000;
const CLIENTS = Number(process.env.SOAK_CLIENTS ?? 64);
/** Hostile streams, each on a server and database of its own (a mutation has its server to itself), and inputs in flight on each. */
const HOSTILE_STREAMS = Number(process.env.SOAK_HOSTILE_STREAMS ?? 6);
const HOSTILE_CONCURRENCY = 5;
/** The part of the time each auditor spends checking (the rest of the machine is the soak's). */
const AUDIT_SHARE = 0.08;

const seed = process.env.SEED !== undefined ? Number(process.env.SEED) : Math.floor(Math.random() * 2 ** 31);

let dataDir: string;
let pg: PgServer;
let apis: ApiProcess[] = [];
let stormDb: Pool;
let model: TestApp;
let hostileApps: TestApp[] = [];

async function createDatabases(url: string, names: string[]): Promise<Record<string, string>> {
  const admin = new Client({ connectionString: url });
  await admin.connect();
  const out: Record<string, string> = {};
  for (const n of names) {
    await admin.query(`CREATE DATABASE soak_${n}`);
    const u = new URL(url);
    u.pathname = `/soak_${n}`;
    out[n] = u.toString();
  }
  await admin.end();
  return out;
}

async function must(base: string, query: string, variables: Record<string, unknown>, sub: string, role: Role = Role.USER): Promise<Record<string, any>> {
  const r = await post(base, query, variables, sub, role);
  const payload = r.data && (Object.values(r.data)[0] as Record<string, any>);
  if (r.errors?.length || !payload || payload.userErrors?.length) throw new Error(`setup failed: ${query.slice(0, 80)} → ${JSON.stringify(r).slice(0, 400)}`);
  return payload;
}

/** Users, four workspaces (owner, members), workers; every holder funded; auto top-up on for some. */
async function openCast(base: string): Promise<Cast> {
  const users = Array.from({ length: 40 }, (_, i) => `soak-u${i}`);
  const cast: Cast = { users, workspaces: [], workers: Array.from({ length: 24 }, (_, i) => `soak-gpu-${i}`) };
  await post(base, '{ me { id } }', {}, ADMIN, Role.ADMIN);
  const fund = (a: string, n: number) => must(base, 'mutation($a: ID!, $n: Int!) { adjustCredits(input: { accountId: $a, amount: $n, reason: "soak float" }) { entry { id } userErrors { code } } }', { a, n }, ADMIN, Role.ADMIN);
  for (const u of users) {
    await must(base, '{ me { id } }', {}, u);
    await fund(u, 400); // auto top-up (below 150) soon comes into play
  }
  for (let w = 0; w < 4; w++) {
    const owner = `soak-owner-${w}`;
    await must(base, '{ me { id } }', {}, owner);
    const ws = await must(base, 'mutation($n: String!) { createWorkspace(input: { name: $n }) { workspace { id } userErrors { code } } }', { n: `soak ${w}` }, owner);
    const id = ws.workspace.id as string;
    const members = [owner, ...users.slice(w * 4, w * 4 + 5)];
    for (const m of members.slice(1)) {
      await must(base, 'mutation($w: ID!, $a: ID!) { setWorkspaceMember(input: { workspaceId: $w, accountId: $a, role: MEMBER }) { member { role } userErrors { code } } }', { w: id, a: m }, owner);
    }
    await fund(id, 4000);
    cast.workspaces.push({ id, owner, members });
  }
  const topUp = 'mutation($w: ID) { setAutoTopUp(input: { packCode: "STARTER", belowCredits: 150, maxPerMonth: 31, workspaceId: $w }) { autoTopUp { enabled } userErrors { code } } }';
  for (const u of users.slice(0, 8)) await must(base, topUp, { w: null }, u);
  for (const w of cast.workspaces.slice(0, 2)) await must(base, topUp, { w: w.id }, w.owner);
  return cast;
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'credits-soak-'));
  pg = new PgServer(dataDir, await freePort());
  const url = await pg.start();
  const dbs = await createDatabases(url, ['storm', 'model', ...Array.from({ length: HOSTILE_STREAMS }, (_, k) => `hostile${k}`)]);
  stormDb = auditPool(dbs.storm);
  const env = {
    DATABASE_URL: dbs.storm, LOG_LEVEL: 'warn', SIMULATED_WORKER: '0', DB_POOL_SIZE: '16', JOB_SWEEP_INTERVAL_MS: '1000', JOB_LEASE_SECONDS: '5', ACCOUNT_QUEUE_MAX: '100000',
    // A payment a kill interrupted is taken over after 10 s (120 by default), so a round's automatic purchases settle in it.
    INTENT_RECONCILE_AFTER_SECONDS: '10',
    // The limits are off (0): every client here is one operator's load, from one address.
    RATE_LIMIT_ACCOUNT_MUTATIONS: '0', RATE_LIMIT_ADDRESS_MUTATIONS: '0', RATE_LIMIT_ACCOUNT_CANCELS_PER_DAY: '0',
  };
  // The compiled service: a restart takes about a second instead of compiling the sources again.
  const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: path.resolve(__dirname, '..', '..'), stdio: 'inherit' });
  if (build.status !== 0) throw new Error('the build failed');
  apis = [new ApiProcess(await freePort(), env, { compiled: true }), new ApiProcess(await freePort(), env, { compiled: true })];
  for (const a of apis) await a.start(); // one after the other: the first migrates
  const quiet = { JOB_SWEEP_INTERVAL_MS: '3600000', RATE_LIMIT_ACCOUNT_MUTATIONS: '100000000', RATE_LIMIT_ADDRESS_MUTATIONS: '100000000', RATE_LIMIT_ACCOUNT_SUBSCRIBES: '100000000', RATE_LIMIT_ADDRESS_SUBSCRIBES: '100000000' };
  model = await startTestApp({ ...quiet, TEST_CLOCK: '1', JOB_LEASE_SECONDS: '86400' }, dbs.model);
  for (let k = 0; k < HOSTILE_STREAMS; k++) hostileApps.push(await startTestApp({ ...quiet, NODE_ENV: 'production' }, dbs[`hostile${k}`]));
}, 300_000);

afterAll(async () => {
  for (const a of apis) await a.stop();
  await stormDb?.end();
  await model?.stop();
  for (const h of hostileApps) await h.stop();
  await pg?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

it(`soak: ${MINUTES} minutes of kills, database restarts, storm, model and hostile input with 0 violations`, async () => {
  process.stdout.write(`[soak] seed ${seed} (replay: SEED=${seed} npm run test:soak), ${MINUTES} minutes\n`);
  const r = rng(seed);
  const started = Date.now();
  const cast = await openCast(apis[0].base);
  const holders = [...cast.users, ...cast.workspaces.map((w) => w.id)];
  const gate = new Gate();
  const stormAudit = startAuditor(stormDb, 20_000, AUDIT_SHARE);
  const modelAudit = startAuditor(model.audit, 2_000, AUDIT_SHARE);
  const hostileAudits = hostileApps.map((h) => startAuditor(h.audit, 5_000, AUDIT_SHARE));
  const problems: string[] = [];

  // The model, run after run on its own database (a database restart waits for the run in progress).
  const catalog = await loadCatalog(model);
  let modelStop = false;
  let modelRuns = 0;
  let modelFailure: string | undefined;
  const modelBefore = totalExecuted();
  const modelLoop = (async () => {
    for (let chunk = 0; !modelStop; chunk++) {
      const property = modelProperty(model, catalog, { maxCommands: 60, around: (run) => gate.during(run) });
      const details = await fc.check(property, { seed: seed + chunk, numRuns: 5, endOnFailure: true });
      modelRuns += details.numRuns;
      if (details.failed) {
        modelFailure = `model: seed ${seed + chunk} path ${details.counterexamplePath}: ${String(details.errorInstance).slice(0, 1500)}`;
        return;
      }
    }
  })();

  // Hostile inputs, several at a time on each stream (a mutation alone).
  const streams = hostileApps.map((h, k) => new HostileStream(h, seed + k * 1_000_003));
  for (const h of streams) await h.prepare();
  const hostile = {
    get sent() { return streams.reduce((n, h) => n + h.sent, 0); },
    get refused() { return streams.reduce((n, h) => n + h.refused, 0); },
    get findings() { return streams.flatMap((h) => h.findings); },
  };
  let hostileStop = false;
  const hostileLoop = Promise.all(
    streams.flatMap((h) =>
      Array.from({ length: HOSTILE_CONCURRENCY }, async () => {
        while (!hostileStop) await gate.during(() => h.one());
      }),
    ),
  );

  // The storm, in rounds of one database restart each.
  const storm = new Storm(apis, cast, { seed, tag: `s${seed}`, clients: CLIENTS, giveUpMs: 180_000 });
  const windowMs = MINUTES * 60_000 - CLOSE_MS - (Date.now() - started);
  const chaosStart = Date.now();
  const chaosEnd = chaosStart + windowMs;
  // Absolute schedules (the i-th kill and restart are due at i/N of the window, with a seeded
  // jitter): the time a restart or a round's reconciliation takes is made up, not added.
  const killEvery = windowMs / PLANNED_KILLS;
  const restartEvery = windowMs / PLANNED_RESTARTS;
  const killDue = (k: number) => chaosStart + (k + 0.5 + (r() - 0.5) * 0.6) * killEvery;
  let kills = 0;
  let startupKills = 0;
  let restarts = 0;
  let rounds = 0;
  let entries = 0;
  let refunds = 0;
  let autoGrants = 0;
  const pgDownMs: number[] = [];
  const readyAfterMs: number[] = [];
  let nextKill = killDue(0);
  let prev: Snapshot = await snapshot(stormDb, holders, 0);

  const untilReady = async (a: ApiProcess) => {
    const t0 = Date.now();
    while ((await probe(a.base, '/readyz')) !== 200) {
      if (!a.alive()) throw new Error(`the instance on ${a.port} exited while the database was away:\n${a.output().slice(-3000)}`);
      if (Date.now() - t0 > 120_000) throw new Error(`instance on ${a.port} not ready 120 s after the database returned:\n${a.output().slice(-3000)}`);
      await sleep(20);
    }
    return Date.now() - t0;
  };

  try {
    while ((Date.now() < chaosEnd || restarts < PLANNED_RESTARTS) && !modelFailure) {
      storm.start();
      const restartAt = Math.min(chaosEnd, chaosStart + (restarts + 1) * restartEvery);
      while (Date.now() < restartAt) {
        if (storm.failure) throw storm.failure;
        if (Date.now() >= nextKill) {
          const victim = apis[kills % 2];
          await victim.kill9();
          kills++;
          if (r() < 0.15) {
            // Killed again while starting (loading, connecting, migrating).
            victim.spawn();
            await sleep(300 + Math.floor(r() * 2500));
            await victim.kill9();
            kills++;
            startupKills++;
          }
          await victim.start();
          nextKill = killDue(kills);
        }
        await sleep(50);
      }
      if (restarts < PLANNED_RESTARTS) {
        // The database goes away under the storm; the model and the hostile stream wait for it.
        await gate.close();
        const mode = restarts % 2 === 0 ? 'fast' : 'immediate';
        const t0 = Date.now();
        await pg.stop(mode);
        await sleep(500 + Math.floor(r() * 2000));
        await pg.start();
        pgDownMs.push(Date.now() - t0);
        restarts++;
        for (const a of apis) readyAfterMs.push(await untilReady(a));
        gate.open();
        await sleep(3000); // keyed writes resume under the storm
      }
      const tStop = Date.now();
      await storm.stop();
      const tSnap = Date.now();
      // An automatic purchase still in flight is not waited for: its grant is reconciled in the
      // round it lands in (one a kill interrupted waits out its 60 s lease before the reconciler
      // takes it over, and waiting for it here left the storm idle). The soak waits for all at the end.
      const cur = await snapshot(stormDb, holders, prev.maxId - 10_000);
      const rec = reconcileRound(storm.takeRound(), prev, cur);
      const tEnd = Date.now();
      const [{ queued }] = (await stormDb.query(`SELECT count(*)::int AS queued FROM generation_jobs WHERE status = 'QUEUED'`)).rows;
      const low = [...cur.balances.values()].filter((b) => b < 10).length;
      const slow = storm.slowest;
      storm.slowest = undefined;
      prev = cur;
      rounds++;
      entries += rec.entries;
      refunds += rec.refunds;
      autoGrants += rec.autoGrants;
      const fresh = [...rec.problems, ...storm.findings.splice(0)].map((p) => `round ${rounds}: ${p}`);
      for (const p of fresh.slice(0, 8)) process.stdout.write(`[soak] PROBLEM ${p}\n`);
      problems.push(...fresh);
      const elapsed = ((Date.now() - started) / 60_000).toFixed(1);
      process.stdout.write(
        `[soak] ${elapsed} min, round ${rounds}: ${kills} kills, ${restarts} restarts, ${storm.answered} storm operations, ${totalExecuted() - modelBefore} model commands (${modelRuns} runs), ${hostile.sent} hostile inputs, ${problems.length + hostile.findings.length} problems; round end: stop ${tSnap - tStop} ms, snapshot+reconcile ${tEnd - tSnap} ms; ${queued} jobs queued, ${low} holders below 10 credits; slowest ${slow ? `${slow.kind} ${slow.ms} ms in ${slow.attempts} (${slow.last ?? '-'})` : '-'}\n`,
      );
      if (problems.length > 100) break;
    }
  } finally {
    // Also when a failure stops the chaos: the model and the hostile streams end before the servers do.
    modelStop = true;
    hostileStop = true;
    await Promise.allSettled([modelLoop, hostileLoop]);
  }
  await Promise.all([modelLoop, hostileLoop]); // a stream that failed fails the soak
  for (const h of streams) await h.close();
  if (modelFailure) problems.push(modelFailure);
  problems.push(...hostile.findings);
  // Every automatic purchase settles (one a kill interrupted: after its lease, by the reconciler), and the last round's are reconciled too.
  await topUpsSettled(stormDb, holders, 180_000);
  {
    const cur = await snapshot(stormDb, holders, prev.maxId - 10_000);
    const rec = reconcileRound([], prev, cur);
    entries += rec.entries;
    autoGrants += rec.autoGrants;
    refunds += rec.refunds;
    problems.push(...rec.problems.map((p) => `after the storm: ${p}`));
  }
  const violations = [
    ...(await stormAudit.stop()).map((v) => `storm auditor: ${v}`),
    ...(await modelAudit.stop()).map((v) => `model auditor: ${v}`),
    ...(await Promise.all(hostileAudits.map((a) => a.stop()))).flat().map((v) => `hostile auditor: ${v}`),
  ];
  const modelCommands = totalExecuted() - modelBefore;
  const operations = storm.answered + modelCommands;
  const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? 0;
  const figures = {
    seed, minutes: +((Date.now() - started) / 60_000).toFixed(1), kills, startupKills, pgRestarts: restarts, rounds,
    stormOperations: storm.answered, stormByKind: Object.fromEntries(storm.byKind), unansweredAttempts: storm.attemptsUnanswered,
    modelCommands, modelRuns, modelByName: Object.fromEntries(executed), operations, hostileInputs: hostile.sent, hostileRefused: hostile.refused,
    ledgerEntries: entries, refunds, autoTopUpGrants: autoGrants,
    pgDownMsP50: pct(pgDownMs, 50), pgDownMsMax: pct(pgDownMs, 100), readyAfterDbMsP50: pct(readyAfterMs, 50), readyAfterDbMsMax: pct(readyAfterMs, 100),
    apiRestartMsP50: pct(apis.flatMap((a) => a.startMs.slice(1)), 50),
    auditPasses: { storm: stormAudit.passes(), model: modelAudit.passes(), hostile: hostileAudits.reduce((n, a) => n + a.passes(), 0) },
    violations: violations.length + problems.length,
    outcomesSeen: outcomes.size,
  };
  process.stdout.write(`[soak] figures ${JSON.stringify(figures)}\n`);
  // A deadlock's own report (PostgreSQL's log: the locks and statements of each process in the cycle).
  const deadlocks = await readFile(path.join(dataDir, 'deadlocks.log'), 'utf8').catch(() => '');
  if (deadlocks) process.stdout.write(`[soak] PostgreSQL's deadlock reports:\n${deadlocks.slice(0, 20_000)}\n`);
  await writeFile(path.join(os.tmpdir(), `soak-${seed}.json`), JSON.stringify({ figures, problems, violations, deadlocks }, null, 2));
  expect(problems).toEqual([]);
  expect(violations).toEqual([]);
  if (FULL) {
    expect(kills).toBeGreaterThanOrEqual(TARGETS.kills);
    expect(restarts).toBeGreaterThanOrEqual(TARGETS.pgRestarts);
    expect(operations).toBeGreaterThanOrEqual(TARGETS.operations);
    expect(hostile.sent).toBeGreaterThanOrEqual(TARGETS.hostile);
  }
}, (MINUTES + 30) * 60_000);
