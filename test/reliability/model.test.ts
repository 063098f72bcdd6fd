/**
 * Model-based test (issue 6, item 2): fast-check generates sequences of commands — buy a pack,
 * a declined card, start generations (affordable, unaffordable, outside the tier), workers
 * claiming, completing and failing jobs, cancels, refund requests, admin adjustments, plan
 * changes and cancellations, auto top-up (set, turned off, and the purchases it makes by itself), the test clock moving across refund windows, period ends and lot
 * expiries — and runs them against the real API (HTTP) and database, over a few accounts at
 * once. After every command the touched accounts must agree with a small in-memory model
 * (model/model.ts): available balance, lots, plan, every job's status and refunded flag, every
 * purchase's status, and the exact userError codes. The ledger invariants are checked by an
 * auditor during the runs and after each run.
 *
 * Replay: the seed is printed; SEED=<seed> replays the same runs, and on a failure the output
 * gives fast-check's counterexample path: SEED=<seed> FC_PATH=<path> replays just that case.
 * Each run uses fresh accounts (the database and the test clock are shared between runs).
 */
import fc from 'fast-check';
import { startAuditor } from '../helpers/auditor';
import { scale, seedFor, STRESS } from '../helpers/scale';
import { startTestApp, type TestApp } from '../helpers/test-app';
import { ACCOUNTS, executed, outcomes, timings } from './model/commands';
import type { Catalog } from './model/model';
import { modelProperty, totalExecuted } from './model/property';
import { loadCatalog } from './model/system';

// MODEL_RUNS / MODEL_COMMANDS override the counts (exploring, or replaying a long run's case).
const RUNS = Number(process.env.MODEL_RUNS ?? scale(30, 600));
const MAX_COMMANDS = Number(process.env.MODEL_COMMANDS ?? scale(40, 60));

let app: TestApp;
let catalog: Catalog;

beforeAll(async () => {
  // The lease sweep (which would fail jobs left RUNNING while the clock jumps) and the periodic
  // renewals stay out of the way: advanceTestClock runs what falls due before it returns.
  // The operator adjusts and moves the clock for every run: more than a person's rate limit (not what this test is about).
  app = await startTestApp({ TEST_CLOCK: '1', JOB_SWEEP_INTERVAL_MS: '3600000', JOB_LEASE_SECONDS: '86400', RATE_LIMIT_ACCOUNT_MUTATIONS: '100000000' });
  catalog = await loadCatalog(app);
});

afterAll(async () => {
  await app?.stop();
});

describe('model-based: the system never diverges from the model', () => {
  it(`holds over ${RUNS} runs of up to ${MAX_COMMANDS} commands on ${ACCOUNTS} accounts`, async () => {
    expect(catalog.tiers.find((t) => t.code === 'FREE')?.monthlyCredits).toBe(0); // the model covers FREE without monthly credits
    const seed = seedFor('model-based', 20251126);
    const path = process.env.FC_PATH;
    const replayPath = process.env.FC_REPLAY;
    const auditor = startAuditor(app.audit, 500);
    const started = Date.now();
    const before = totalExecuted();
    const property = modelProperty(app, catalog, { maxCommands: MAX_COMMANDS, replayPath });

    const details = await fc.check(property, {
      seed,
      numRuns: RUNS,
      ...(path ? { path } : {}),
      // Shrinking re-runs whole sequences against the real system: bounded unless asked for.
      endOnFailure: process.env.FC_SHRINK !== '1' && STRESS,
    });
    const violations = await auditor.stop();
    const commandsRun = totalExecuted() - before;
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const byName = [...executed.entries()].sort((x, y) => y[1] - x[1]).map(([k, n]) => `${k} ${n}`).join(', ');
    process.stdout.write(
      `[model-based] ${details.numRuns} runs, ${commandsRun} commands (${byName}) in ${seconds} s; auditor: ${auditor.passes()} passes, ${violations.length} violations\n`,
    );
    const seen = [...outcomes.entries()].sort((x, y) => x[0].localeCompare(y[0])).map(([k, n]) => `  ${k}: ${n}`).join('\n');
    process.stdout.write(`[model-based] outcomes:\n${seen}\n`);
    if (process.env.MODEL_TIMINGS) process.stdout.write(`[model-based] ms per command: ${[...timings].map(([k, t]) => `${k} ${(t / executed.get(k)!).toFixed(0)}`).join(', ')}\n`);
    if (details.failed) {
      const report = fc.defaultReportMessage(details) ?? 'model-based test failed';
      const replay = /replayPath="([^"]+)"/.exec(report)?.[1];
      const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
      process.stdout.write(
        `[model-based] FAILED — replay this case: ${STRESS ? 'STRESS=1 ' : ''}${process.env.MODEL_COMMANDS ? `MODEL_COMMANDS=${MAX_COMMANDS} ` : ''}SEED=${details.seed} FC_PATH="${details.counterexamplePath}"` +
          `${replay ? ` FC_REPLAY="${replay}"` : ''} npx jest test/reliability/model.test.ts\n${report}\n${cause}\n`,
      );
      throw new Error(`${report}\n${cause}`);
    }
    expect(violations).toEqual([]);
  }, scale(240_000, 3_600_000));
});
