/**
 * Debit storm, through the real HTTP API on a real PostgreSQL, with an auditor checking every
 * ledger invariant on its own connection during and after each test.
 *
 * 1. 64 concurrent clients spend one account's credits: exactly as many generations are
 *    accepted as the balance pays for, every accepted debit saw a different balance, and the
 *    balance ends at the exact remainder (one price) or at exactly 0 (mixed prices).
 * 2. A mix of accounts with purchases, generations, cancels, worker completions and failures,
 *    refund requests, plan changes and cancellations interleaved by concurrent clients, in
 *    rounds; between rounds the jobs are drained, each account's balance must equal what the
 *    acknowledged answers add up to, and the test clock is advanced so that plans renew and
 *    allowances expire — by exactly the amounts the plan and lot state before predicts.
 *
 * Short form (npm test): fixed seed, small counts. Long form (STRESS=1): larger counts.
 */
import { Role } from '../../src/common/auth/role.enum';
import { balanceOf, signupCredits } from '../helpers/accounts';
import { startAuditor } from '../helpers/auditor';
import { scale, seedFor } from '../helpers/scale';
import { useTestApp } from '../helpers/test-app';
import { Caller, FREE_SETTINGS, OPS, PACKS, Random, pool, sleep, type StartResult, type UserError } from './storm-support';

// Time-driven work (renewals, expiries, lease sweeps) runs only when the test advances the clock.
const t = useTestApp({ TEST_CLOCK: '1', JOB_SWEEP_INTERVAL_MS: '3600000', DB_POOL_SIZE: '20' });

const CLIENTS = 64;
/** Per-test time limit: jest's 60 s in the short form, room for the larger counts in the long one. */
const LONG = scale(60_000, 30 * 60_000);
const started = Date.now();
afterAll(() => {
  process.stdout.write(`[debit-storm] ${((Date.now() - started) / 1000).toFixed(1)} s in all\n`);
});

/** Waits for the work, then stops the auditor (also when the work failed) and returns what it saw. */
async function settle(work: Promise<unknown>, auditor: ReturnType<typeof startAuditor>): Promise<string[]> {
  try {
    await work;
  } catch (e) {
    await auditor.stop();
    throw e;
  }
  return auditor.stop();
}

let signup: number; // the catalog's sign-up credits: every account starts with them

beforeAll(async () => {
  signup = await signupCredits(t.app);
});

async function entryCount(sub: string, kind: string): Promise<number> {
  return (await t.app.audit.query('SELECT count(*)::int AS n FROM ledger_entries WHERE account_id = $1 AND kind = $2', [sub, kind])).rows[0].n;
}

/** What the client side knows of one account: the acknowledged changes add up to `expected`. */
interface Book {
  sub: string;
  thrifty: boolean;
  caller: Caller;
  expected: number;
  /** Jobs this account started that may still be QUEUED (cancel candidates). */
  open: string[];
  purchases: string[];
  accepted: number;
  refused: number;
  refunds: number;
  packs: number;
  revoked: number;
}

interface Tally {
  ops: number;
  starts: number;
  refusals: number;
  cancels: number;
  /** Cancels that reached a RUNNING job: asked to stop. */
  stopRequests: number;
  completions: number;
  failures: number;
  purchases: number;
  refundsApproved: number;
  refundsDenied: number;
  reviews: number;
  planChanges: number;
  planCancels: number;
  renewals: number;
  expiries: number;
  advances: number;
}

describe('debit storm across accounts', () => {
  it('keeps every account equal to its acknowledged changes through concurrent purchases, starts, cancels, failures, refunds, plan changes and renewals', async () => {
    const seed = seedFor('debit-storm mix', 20260601);
    const rng = new Random(seed);
    const accounts = scale(8, 24);
    const rounds = scale(3, 12);
    const opsPerRound = scale(200, 1000);
    const concurrency = 16;

    const tiers = (await t.app.audit.query(`SELECT code, monthly_credits FROM tiers`)).rows as { code: string; monthly_credits: number }[];
    const monthly = Object.fromEntries(tiers.map((r) => [r.code, r.monthly_credits])) as Record<string, number>;
    const admin = await Caller.as(t.app, 'mix-admin', Role.ADMIN);
    const workers = await Promise.all(['gpu-a', 'gpu-b', 'gpu-c'].map((w) => Caller.as(t.app, w, Role.WORKER)));
    const books: Book[] = [];
    const newBook = async (sub: string, thrifty: boolean): Promise<Book> => {
      const caller = await Caller.as(t.app, sub);
      await caller.send(OPS.me);
      return { sub, thrifty, caller, expected: signup, open: [], purchases: [], accepted: 0, refused: 0, refunds: 0, packs: 0, revoked: 0 };
    };
    for (let i = 0; i < accounts; i++) books.push(await newBook(`mix-${i}`, i % 4 === 0));
    // The random draws pick from these; two more accounts are driven step by step between rounds,
    // so that every kind of change happens in every storm whatever the interleaving and the date:
    // the probe is the one account with nothing else in flight, the keeper holds a monthly plan
    // and never spends (the clock is advanced to cross its allowance month's end every other round).
    const drawn = [...books];
    const probe = await newBook('mix-probe', false);
    const keeper = await newBook('mix-keeper', true);
    books.push(probe, keeper);
    let keeperRenewals = 0;
    const owner = new Map<string, { book: Book; credits: number }>();
    const tally: Tally = {
      ops: 0, starts: 0, refusals: 0, cancels: 0, stopRequests: 0, completions: 0, failures: 0, purchases: 0, refundsApproved: 0, refundsDenied: 0,
      reviews: 0, planChanges: 0, planCancels: 0, renewals: 0, expiries: 0, advances: 0,
    };
    // Jobs other tests left QUEUED are not this storm's: finish them first (no balance changes).
    await pool(
      workers.map((w) => async () => {
        for (;;) {
          const { claimGenerationJob: job } = await w.send<{ claimGenerationJob: { id: string } | null }>(OPS.claim);
          if (!job) return;
          await w.send(OPS.complete, { jobId: job.id });
        }
      }),
      workers.length,
    );
    const auditor = startAuditor(t.app.audit);
    let keys = 0;

    const forget = (book: Book, jobId: string) => {
      const i = book.open.indexOf(jobId);
      if (i >= 0) book.open.splice(i, 1);
    };

    /** One worker takes the next job and completes or fails it; false when the queue is empty. */
    async function work(worker: Caller, fail: boolean): Promise<boolean> {
      const { claimGenerationJob: job } = await worker.send<{ claimGenerationJob: { id: string; credits: number; status: string } | null }>(OPS.claim);
      if (!job) return false;
      expect(job.status).toBe('RUNNING');
      // A worker may claim a job before the answer to its start reached the client.
      for (let i = 0; !owner.has(job.id) && i < 1000; i++) await sleep(5);
      const mine = owner.get(job.id);
      if (!mine) throw new Error(`claimed job ${job.id} was started by nobody in this storm`);
      expect(job.credits).toBe(mine.credits);
      forget(mine.book, job.id);
      if (fail) {
        const { failGenerationJob: f } = await worker.send<{ failGenerationJob: { status: string; refunded: boolean; credits: number } }>(OPS.fail, { jobId: job.id });
        // A job its owner asked to stop ends CANCELED instead; at progress 0 its unrendered share is all of it.
        expect(f.status === 'FAILED' || f.status === 'CANCELED').toBe(true);
        expect(f.refunded).toBe(true);
        mine.book.expected += mine.credits;
        mine.book.refunds++;
        tally.failures++;
      } else {
        const { completeGenerationJob: c } = await worker.send<{ completeGenerationJob: { status: string; refunded: boolean } }>(OPS.complete, { jobId: job.id });
        expect(c).toEqual({ id: job.id, status: 'SUCCEEDED', refunded: false });
        tally.completions++;
      }
      return true;
    }

    function applyRefundAnswer(book: Book, out: { refundRequest: { status: string; creditsRevoked: number } | null; userErrors: UserError[] }): void {
      const codes = out.userErrors.map((e) => e.code);
      if (codes[0] === 'REFUND_ALREADY_REQUESTED') {
        // A repeated request answers with the first decision and changes nothing.
        expect(codes).toHaveLength(1);
        expect(out.refundRequest).not.toBeNull();
      } else if (out.refundRequest?.status === 'APPROVED') {
        expect(codes).toEqual([]);
        book.expected -= out.refundRequest.creditsRevoked;
        book.revoked += out.refundRequest.creditsRevoked;
        tally.refundsApproved++;
      } else if (out.refundRequest?.status === 'DENIED') {
        expect(codes.length === 1 && ['CREDITS_ALREADY_USED', 'REFUND_WINDOW_EXPIRED'].includes(codes[0])).toBe(true);
        tally.refundsDenied++;
      } else if (out.refundRequest?.status === 'PENDING_REVIEW') {
        expect(codes).toEqual([]);
      } else {
        // Not COMPLETED any more, or a plan purchase that is not the latest.
        expect(codes).toEqual(['INVALID_STATE']);
      }
    }

    /** One random operation, drawn now (deterministic for the seed), run later by the pool. */
    function drawOp(): () => Promise<void> {
      const book = rng.pick(drawn);
      let roll = rng.next();
      // A quarter of the accounts never buy anything: they spend their sign-up credits down to refusals.
      if (book.thrifty && roll >= 0.6 && roll < 0.88) roll = roll * 0.5;
      const r2 = rng.next();
      const r3 = rng.next();
      if (roll < 0.3) {
        const s = FREE_SETTINGS[Math.floor(r2 * FREE_SETTINGS.length)];
        return async () => {
          const { startGeneration: out } = await book.caller.send<StartResult>(OPS.start, { input: { settings: s.settings, prompt: 'storm' } });
          if (out.job) {
            expect(out.job.credits).toBe(s.credits);
            owner.set(out.job.id, { book, credits: s.credits });
            book.open.push(out.job.id);
            book.expected -= s.credits;
            book.accepted++;
            tally.starts++;
          } else {
            expect(out.userErrors.map((e) => e.code)).toEqual(['INSUFFICIENT_CREDITS']);
            expect(out.balance!.available).toBeLessThan(s.credits);
            book.refused++;
            tally.refusals++;
          }
        };
      }
      if (roll < 0.4) {
        return async () => {
          const jobId = book.open[Math.floor(r2 * book.open.length)];
          if (!jobId) return;
          const { cancelGeneration: out } = await book.caller.send<{
            cancelGeneration: { job: { status: string; refunded: boolean; credits: number } | null; userErrors: UserError[] };
          }>(OPS.cancel, { jobId });
          forget(book, jobId);
          if (out.userErrors.length === 0 && out.job?.status === 'RUNNING') {
            // Claimed meanwhile: asked to stop; its worker's answer settles it (work(): a failure stops it as a cancel).
            expect(out.job).toMatchObject({ refunded: false });
            tally.stopRequests++;
          } else if (out.userErrors.length === 0) {
            expect(out.job).toMatchObject({ status: 'CANCELED', refunded: true });
            book.expected += owner.get(jobId)!.credits;
            book.refunds++;
            tally.cancels++;
          } else {
            expect(out.userErrors.map((e) => e.code)).toEqual(['INVALID_STATE']);
          }
        };
      }
      if (roll < 0.6) {
        const worker = workers[Math.floor(r2 * workers.length)];
        return async () => {
          await work(worker, r3 < 0.4);
        };
      }
      if (roll < 0.7) {
        const code = Object.keys(PACKS)[Math.floor(r2 * 3)];
        return async () => {
          const { purchaseCreditPack: out } = await book.caller.send<{
            purchaseCreditPack: { purchase: { id: string; status: string; credits: number }; userErrors: UserError[] };
          }>(OPS.buy, { input: { packCode: code, idempotencyKey: `buy-${keys++}` } });
          expect(out.userErrors).toEqual([]);
          expect(out.purchase).toMatchObject({ status: 'COMPLETED', credits: PACKS[code] });
          book.purchases.push(out.purchase.id);
          book.expected += PACKS[code];
          book.packs++;
          tally.purchases++;
        };
      }
      if (roll < 0.78) {
        return async () => {
          const purchaseId = book.purchases[Math.floor(r2 * book.purchases.length)];
          if (!purchaseId) return;
          const { requestRefund: out } = await book.caller.send<{
            requestRefund: { refundRequest: { status: string; creditsRevoked: number } | null; userErrors: UserError[] };
          }>(OPS.refund, { input: { purchaseId, reason: 'storm' } });
          applyRefundAnswer(book, out);
        };
      }
      if (roll < 0.88) {
        const tier = ['CREATOR', 'PRO', 'CREATOR', 'PRO', 'MAX'][Math.floor(r2 * 5)];
        const interval = r3 < 0.15 ? 'ANNUAL' : 'MONTHLY';
        return async () => {
          const { changePlan: out } = await book.caller.send<{
            changePlan: { purchase: { id: string; status: string; credits: number } | null; userErrors: UserError[] };
          }>(OPS.changePlan, { input: { tier, interval, idempotencyKey: `plan-${keys++}` } });
          if (out.userErrors.length) {
            expect(out.userErrors.map((e) => e.code)).toEqual(['INVALID_STATE']);
            return;
          }
          if (out.purchase) {
            // A new period grants its first month; an upgrade its prorated top-up: both the purchase's credits.
            expect(out.purchase.status).toBe('COMPLETED');
            book.purchases.push(out.purchase.id);
            book.expected += out.purchase.credits;
          }
          tally.planChanges++;
        };
      }
      if (roll < 0.92) {
        return async () => {
          const { cancelPlan: out } = await book.caller.send<{ cancelPlan: { userErrors: UserError[] } }>(OPS.cancelPlan);
          expect(out.userErrors.every((e) => e.code === 'INVALID_STATE')).toBe(true);
          if (!out.userErrors.length) tally.planCancels++;
        };
      }
      return async () => {
        await book.caller.send(OPS.me);
      };
    }

    async function checkBooks(when: string): Promise<void> {
      for (const b of books) {
        const { me } = await b.caller.send<{ me: { balance: { available: number } } }>(OPS.me);
        const counts = (await t.app.audit.query(
          `SELECT count(*) FILTER (WHERE kind = 'DEBIT')::int AS debits, count(*) FILTER (WHERE kind = 'REFUND')::int AS refunds,
                  count(*) FILTER (WHERE kind = 'GRANT' AND purchase_id IN (SELECT id FROM purchases WHERE kind = 'CREDIT_PACK'))::int AS packs
             FROM ledger_entries WHERE account_id = $1`,
          [b.sub],
        )).rows[0];
        expect({ when, sub: b.sub, balance: me.balance.available, ...counts }).toEqual({
          when, sub: b.sub, balance: b.expected, debits: b.accepted, refunds: b.refunds, packs: b.packs,
        });
      }
    }

    /**
     * The probe, with nothing else in flight: a pack bought; a start cancelled while QUEUED; two
     * starts a worker completes and fails; the pack's refund denied (a credit was used); the
     * balance taken to 0 by an admin and a start refused. Each answer is exactly as predicted.
     */
    async function probeRound(): Promise<void> {
      const { settings, credits } = FREE_SETTINGS[0];
      const { purchaseCreditPack: bought } = await probe.caller.send<{ purchaseCreditPack: { purchase: { id: string }; userErrors: UserError[] } }>(OPS.buy, {
        input: { packCode: 'STARTER', idempotencyKey: `buy-${keys++}` },
      });
      expect(bought.userErrors).toEqual([]);
      probe.purchases.push(bought.purchase.id);
      probe.expected += PACKS.STARTER;
      probe.packs++;
      tally.purchases++;
      const start = async (): Promise<string> => {
        const { startGeneration: out } = await probe.caller.send<StartResult>(OPS.start, { input: { settings, prompt: 'probe' } });
        expect(out.userErrors).toEqual([]);
        expect(out.job!.credits).toBe(credits);
        owner.set(out.job!.id, { book: probe, credits });
        probe.expected -= credits;
        probe.accepted++;
        tally.starts++;
        return out.job!.id;
      };
      const queued = await start();
      const { cancelGeneration: cancel } = await probe.caller.send<{ cancelGeneration: { job: { status: string; refunded: boolean }; userErrors: UserError[] } }>(OPS.cancel, { jobId: queued });
      expect(cancel).toMatchObject({ job: { status: 'CANCELED', refunded: true }, userErrors: [] });
      probe.expected += credits;
      probe.refunds++;
      tally.cancels++;
      await start();
      await start();
      expect(await work(workers[0], false)).toBe(true);
      expect(await work(workers[0], true)).toBe(true);
      const { requestRefund: denied } = await probe.caller.send<{
        requestRefund: { refundRequest: { status: string; creditsRevoked: number } | null; userErrors: UserError[] };
      }>(OPS.refund, { input: { purchaseId: bought.purchase.id, reason: 'probe' } });
      expect(denied.refundRequest).toMatchObject({ status: 'DENIED', creditsRevoked: 0 });
      expect(denied.userErrors.map((e) => e.code)).toEqual(['CREDITS_ALREADY_USED']);
      tally.refundsDenied++;
      const { adjustCredits: emptied } = await admin.send<{ adjustCredits: { balance: { available: number }; userErrors: UserError[] } }>(OPS.adjust, {
        input: { accountId: probe.sub, amount: -probe.expected, reason: 'storm probe: empty the balance', idempotencyKey: `probe-empty-${keys++}` },
      });
      expect(emptied).toMatchObject({ balance: { available: 0 }, userErrors: [] });
      probe.expected = 0;
      const { startGeneration: refused } = await probe.caller.send<StartResult>(OPS.start, { input: { settings, prompt: 'probe, broke' } });
      expect(refused.userErrors.map((e) => e.code)).toEqual(['INSUFFICIENT_CREDITS']);
      probe.refused++;
      tally.refusals++;
    }

    const t0 = Date.now();
    const storm = (async () => {
      for (let round = 0; round < rounds; round++) {
        await pool(Array.from({ length: opsPerRound }, drawOp), concurrency);
        tally.ops += opsPerRound;

        // Barrier: drain the queue (so no lease or expiry lands on a job in flight), decide the reviews.
        while (await work(workers[0], rng.chance(0.3)));
        // With nothing in flight, a pack bought and returned at once is refunded in full.
        {
          const book = rng.pick(drawn.filter((b) => !b.thrifty));
          const { purchaseCreditPack: bought } = await book.caller.send<{ purchaseCreditPack: { purchase: { id: string }; userErrors: UserError[] } }>(OPS.buy, {
            input: { packCode: 'STARTER', idempotencyKey: `buy-${keys++}` },
          });
          expect(bought.userErrors).toEqual([]);
          book.purchases.push(bought.purchase.id);
          book.expected += PACKS.STARTER;
          book.packs++;
          tally.purchases++;
          const { requestRefund: out } = await book.caller.send<{
            requestRefund: { refundRequest: { status: string; creditsRevoked: number } | null; userErrors: UserError[] };
          }>(OPS.refund, { input: { purchaseId: bought.purchase.id, reason: 'changed my mind' } });
          expect(out.refundRequest).toMatchObject({ status: 'APPROVED', creditsRevoked: PACKS.STARTER });
          applyRefundAnswer(book, out);
        }
        const { refundRequestsToReview } = await admin.send<{ refundRequestsToReview: { edges: { node: { id: string; purchase: { id: string } } }[] } }>(OPS.toReview);
        for (const { node } of refundRequestsToReview.edges) {
          const book = books.find((b) => b.purchases.includes(node.purchase.id))!;
          const approve = rng.chance(0.5);
          const { reviewRefundRequest: out } = await admin.send<{
            reviewRefundRequest: { refundRequest: { status: string; creditsRevoked: number }; userErrors: UserError[] };
          }>(OPS.review, { input: { id: node.id, approve, note: approve ? 'fair' : 'no' } });
          expect(out.userErrors).toEqual([]);
          expect(out.refundRequest.status).toBe(approve ? 'APPROVED' : 'DENIED');
          book.expected -= out.refundRequest.creditsRevoked;
          if (!approve) expect(out.refundRequest.creditsRevoked).toBe(0);
          tally.reviews++;
        }
        await probeRound();
        if (round === 0) {
          // The keeper's plan: its allowance months are crossed by the advances below.
          const { changePlan: out } = await keeper.caller.send<{ changePlan: { purchase: { id: string; status: string; credits: number }; userErrors: UserError[] } }>(
            OPS.changePlan, { input: { tier: 'CREATOR', interval: 'MONTHLY', idempotencyKey: 'keeper-plan' } },
          );
          expect(out.userErrors).toEqual([]);
          expect(out.purchase).toMatchObject({ status: 'COMPLETED', credits: monthly.CREATOR });
          keeper.purchases.push(out.purchase.id);
          keeper.expected += out.purchase.credits;
          tally.planChanges++;
        }
        await checkBooks(`after round ${round}`);

        // Advance the clock less than the shortest month (28 days): each account passes at most
        // one allowance month or period end. Predict from the state before what must happen.
        // Every other round the advance crosses the keeper's allowance month end (landing 1-12 h
        // after it), the rounds between stop 1-3 days before it.
        const [{ offset_ms: offset }] = (await t.app.audit.query('SELECT offset_ms::float8 AS offset_ms FROM test_clock WHERE id = 1')).rows as { offset_ms: number }[];
        const [{ allowance_period_end: keeperMonthEnd }] = (await t.app.audit.query('SELECT allowance_period_end FROM accounts WHERE id = $1', [keeper.sub])).rows as { allowance_period_end: Date }[];
        const gapHours = (keeperMonthEnd.getTime() - (Date.now() + offset)) / 3_600_000;
        const crossKeeper = gapHours <= 27 * 24 - 12;
        const hours = crossKeeper ? Math.ceil(gapHours) + rng.int(1, 12) : Math.min(27 * 24, Math.floor(gapHours) - rng.int(24, 72));
        if (crossKeeper) keeperRenewals++;
        const plans = (await t.app.audit.query(
          `SELECT id, tier, plan_status, current_period_end, allowance_period_end, cancel_at_period_end, pending_tier
             FROM accounts WHERE id LIKE 'mix-%'`,
        )).rows as {
          id: string; tier: string; plan_status: string; current_period_end: Date | null; allowance_period_end: Date | null;
          cancel_at_period_end: boolean; pending_tier: string | null;
        }[];
        const lots = (await t.app.audit.query(
          `SELECT account_id, remaining, expires_at FROM credit_lots WHERE account_id LIKE 'mix-%' AND remaining > 0 AND expires_at IS NOT NULL`,
        )).rows as { account_id: string; remaining: number; expires_at: Date }[];
        const { advanceTestClock } = await admin.send<{ advanceTestClock: string }>(OPS.advance, { hours });
        const now = new Date(advanceTestClock).getTime();
        tally.advances++;
        for (const b of books) {
          const expired = lots.filter((l) => l.account_id === b.sub && l.expires_at.getTime() <= now).reduce((s, l) => s + l.remaining, 0);
          if (expired) tally.expiries++;
          const p = plans.find((a) => a.id === b.sub)!;
          let granted = 0;
          if (p.plan_status === 'ACTIVE' && p.current_period_end && p.allowance_period_end && p.allowance_period_end.getTime() <= now) {
            if (p.allowance_period_end < p.current_period_end) granted = monthly[p.tier];
            else if (!p.cancel_at_period_end) granted = monthly[p.pending_tier ?? p.tier];
            tally.renewals++;
          }
          b.expected += granted - expired;
        }
        await checkBooks(`after advancing ${hours} h in round ${round}`);
      }
    })();
    const violations = await settle(storm, auditor);
    const seconds = (Date.now() - t0) / 1000;

    process.stdout.write(`[debit-storm] mix: ${accounts} accounts, ${rounds} rounds, ${seconds.toFixed(1)} s, ${auditor.passes()} auditor passes, ${JSON.stringify(tally)}\n`);
    expect(violations).toEqual([]);
    // The storm did what it is for, by construction (the probe each round, the keeper every other
    // one), whatever the interleaving and the date; the random draws add to these.
    expect(keeperRenewals).toBe(Math.floor(rounds / 2));
    const atLeast = { starts: 3 * rounds, refusals: rounds, cancels: rounds, completions: rounds, failures: rounds, purchases: 2 * rounds,
      refundsApproved: rounds, refundsDenied: rounds, planChanges: 1, renewals: keeperRenewals, expiries: keeperRenewals };
    for (const [k, n] of Object.entries(atLeast)) expect({ [k]: tally[k as keyof Tally] >= n }).toEqual({ [k]: true });
  }, LONG);
});

describe('debit storm on one account', () => {
  it('prices the settings the storm uses as the launch price book says', async () => {
    const c = await Caller.as(t.app, 'storm-pricer');
    for (const s of FREE_SETTINGS) {
      const q = await c.send<{ quote: { credits: number; missingFeatures: string[] } }>(
        `query ($s: GenerationSettingsInput!) { quote(settings: $s) { credits missingFeatures } }`,
        { s: s.settings },
      );
      expect(q.quote).toEqual({ credits: s.credits, missingFeatures: [] });
    }
  });

  it('accepts exactly as many generations as the balance pays for when 64 clients spend it at once, and leaves the exact remainder', async () => {
    const sub = 'storm-hot';
    const price = 3; // IMAGE HIGH
    const pays = scale(400, 4000);
    const remainder = 2;
    const total = pays * price + remainder;
    const admin = await Caller.as(t.app, 'storm-admin', Role.ADMIN);
    const owner = await Caller.as(t.app, sub);
    await owner.send(OPS.me);
    await admin.send(OPS.adjust, { input: { accountId: sub, amount: total - signup, reason: 'storm budget' } });
    expect(await balanceOf(t.app, sub)).toBe(total);

    const auditor = startAuditor(t.app.audit);
    const accepted: { jobId: string; after: number }[] = [];
    const refusals: { code: string; available: number }[] = [];
    const t0 = Date.now();
    const storm = Promise.all(
      Array.from({ length: CLIENTS }, async (_, client) => {
        for (let n = 0; ; n++) {
          const r = await owner.send<StartResult>(OPS.start, {
            input: { settings: { type: 'IMAGE', imageQuality: 'HIGH' }, prompt: `client ${client} try ${n}` },
          });
          const out = r.startGeneration;
          if (out.job) {
            expect(out.userErrors).toEqual([]);
            expect(out.job.credits).toBe(price);
            accepted.push({ jobId: out.job.id, after: out.balance!.available });
          } else {
            refusals.push({ code: out.userErrors[0].code, available: out.balance!.available });
            return; // this client has seen the balance run out
          }
        }
      }),
    );
    const violations = await settle(storm, auditor);
    const seconds = (Date.now() - t0) / 1000;
    process.stdout.write(
      `[debit-storm] one price: ${accepted.length} accepted, ${refusals.length} refused in ${seconds.toFixed(1)} s, ${auditor.passes()} auditor passes\n`,
    );

    expect(accepted).toHaveLength(pays);
    expect(new Set(accepted.map((a) => a.jobId)).size).toBe(pays);
    // Each debit left a different balance: B-3, B-6, …, the remainder — no two saw the same one.
    expect(accepted.map((a) => a.after).sort((a, b) => b - a)).toEqual(Array.from({ length: pays }, (_, i) => total - price * (i + 1)));
    expect(refusals).toHaveLength(CLIENTS);
    expect(refusals.every((r) => r.code === 'INSUFFICIENT_CREDITS' && r.available === remainder)).toBe(true);
    expect(await balanceOf(t.app, sub)).toBe(remainder);
    expect(await entryCount(sub, 'DEBIT')).toBe(pays);
    const jobs = await t.app.audit.query(`SELECT count(*)::int AS n, sum(credits)::int AS credits FROM generation_jobs WHERE account_id = $1`, [sub]);
    expect(jobs.rows[0]).toEqual({ n: pays, credits: pays * price });
    expect(violations).toEqual([]);
  }, LONG);

  it('spends the balance to exactly 0 when 64 clients at seven prices race for it, every credit paying for one accepted generation', async () => {
    const sub = 'storm-mixed-prices';
    const total = scale(700, 7000);
    const admin = await Caller.as(t.app, 'storm-admin', Role.ADMIN);
    const owner = await Caller.as(t.app, sub);
    await owner.send(OPS.me);
    await admin.send(OPS.adjust, { input: { accountId: sub, amount: total - signup, reason: 'storm budget' } });

    const auditor = startAuditor(t.app.audit);
    const spent: number[] = [];
    const afters: number[] = [];
    const storm = Promise.all(
      Array.from({ length: CLIENTS }, async (_, client) => {
        const { settings, credits } = FREE_SETTINGS[client % FREE_SETTINGS.length];
        for (let n = 0; ; n++) {
          const r = await owner.send<StartResult>(OPS.start, { input: { settings, prompt: `client ${client} try ${n}` } });
          const out = r.startGeneration;
          if (!out.job) {
            expect(out.userErrors.map((e: UserError) => e.code)).toEqual(['INSUFFICIENT_CREDITS']);
            // Refused only when the balance really could not pay.
            expect(out.balance!.available).toBeLessThan(credits);
            return;
          }
          expect(out.job.credits).toBe(credits);
          spent.push(credits);
          afters.push(out.balance!.available);
        }
      }),
    );
    const violations = await settle(storm, auditor);
    process.stdout.write(`[debit-storm] seven prices: ${spent.length} accepted for ${total} credits, ${auditor.passes()} auditor passes\n`);

    expect(spent.reduce((a, b) => a + b, 0)).toBe(total);
    expect(new Set(afters).size).toBe(spent.length); // every accepted debit left a different balance
    expect(Math.min(...afters)).toBe(0);
    expect(await balanceOf(t.app, sub)).toBe(0);
    expect(await entryCount(sub, 'DEBIT')).toBe(spent.length);
    expect(violations).toEqual([]);
  }, LONG);
});

describe('starts racing plan changes', () => {
  it('answers every start that races an upgrade with a job or a refusal, never an internal error, and debits exactly the accepted ones', async () => {
    const rounds = scale(6, 40);
    const auditor = startAuditor(t.app.audit);
    const work = (async () => {
      for (let r = 0; r < rounds; r++) {
        const me = await Caller.as(t.app, `storm-upgrader-${r}`);
        await me.send(OPS.me);
        // While the upgrade holds the account row and changes its tier, starts queue behind it.
        const [plan, ...starts] = await Promise.all([
          me.send<{ changePlan: { userErrors: UserError[]; purchase: { credits: number } } }>(OPS.changePlan, { input: { tier: 'PRO', interval: 'MONTHLY' } }),
          ...Array.from({ length: 12 }, () => me.send<StartResult>(OPS.start, { input: { settings: { type: 'IMAGE', imageQuality: 'HIGH' }, prompt: 'race' } })),
        ]);
        expect(plan.changePlan.userErrors).toEqual([]);
        const accepted = starts.filter((s) => s.startGeneration.job).length;
        for (const s of starts) {
          if (!s.startGeneration.job) expect(s.startGeneration.userErrors.map((e) => e.code)).toEqual(['INSUFFICIENT_CREDITS']);
        }
        expect(await entryCount(me.sub, 'DEBIT')).toBe(accepted);
        expect(await balanceOf(t.app, me.sub)).toBe(signup + plan.changePlan.purchase.credits - 3 * accepted);
      }
    })();
    expect(await settle(work, auditor)).toEqual([]);
  }, LONG);
});
