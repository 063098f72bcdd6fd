import { Role } from '../src/common/auth/role.enum';
import { transaction } from '../src/common/db/transaction';
import { LedgerEntryKind, LotSource } from '../src/modules/ledger/ledger.enums';
import {
  CancelGenerationDocument,
  ClaimJobDocument,
  CompleteJobDocument,
  FailJobDocument,
  JobDocument,
  JobUpdatedDocument,
  MyJobsDocument,
  QuoteDocument,
  ReportProgressDocument,
  StartGenerationDocument,
  type GenerationSettingsInput,
} from './graphql/generated';
import { openAccount, signupCredits } from './helpers/accounts';
import { subscribe } from './helpers/subscriptions';
import { eventually, startTestApp, useTestApp, type TestApp } from './helpers/test-app';

const t = useTestApp({ TEST_CLOCK: '1', JOB_SWEEP_INTERVAL_MS: '3600000', JOB_LEASE_SECONDS: '60' });
const worker = (sub = 'gpu-1') => ({ sub, role: Role.WORKER });
let signup: number; // the catalog's sign-up credits: every account starts with them

beforeAll(async () => {
  signup = await signupCredits(t.app);
});

const STANDARD_IMAGE: GenerationSettingsInput = { type: 'IMAGE', imageQuality: 'STANDARD' }; // 1 credit
const HIGH_IMAGE: GenerationSettingsInput = { type: 'IMAGE', imageQuality: 'HIGH' }; // 3 credits
const SHORT_VIDEO: GenerationSettingsInput = { type: 'VIDEO', durationSeconds: 5 }; // 9 credits

function start(sub: string, settings: GenerationSettingsInput, extra: { prompt?: string; quoteId?: string; idempotencyKey?: string } = {}) {
  return t.app.gql(StartGenerationDocument, { input: { settings, prompt: extra.prompt ?? 'a lighthouse at dusk', quoteId: extra.quoteId, idempotencyKey: extra.idempotencyKey } }, { sub });
}

/** Balance, ledger and jobs of an account: what a refusal must leave as it was. */
async function state(sub: string) {
  const q = (sql: string) => t.app.audit.query(sql, [sub]).then((r) => r.rows);
  return {
    balance: (await q('SELECT available FROM accounts WHERE id = $1'))[0].available as number,
    entries: await q('SELECT id, amount FROM ledger_entries WHERE account_id = $1 ORDER BY id'),
    lots: await q('SELECT id, remaining FROM credit_lots WHERE account_id = $1 ORDER BY id'),
    jobs: await q('SELECT id, status FROM generation_jobs WHERE account_id = $1 ORDER BY id'),
  };
}

/** Claims jobs until it gets `id` (other tests' leftovers are completed on the way). */
async function claim(id: string, as = worker()) {
  for (let i = 0; i < 50; i++) {
    const r = await t.app.gql(ClaimJobDocument, {}, as);
    const job = r.data!.claimGenerationJob;
    if (!job) throw new Error(`job ${id} was never handed out`);
    if (job.id === id) return job;
    await t.app.gql(CompleteJobDocument, { jobId: job.id, resultUrls: [] }, as);
  }
  throw new Error('too many jobs in the queue');
}

describe('startGeneration', () => {
  it('takes the credits, queues the job with the account queue class and links the DEBIT entry to it', async () => {
    await openAccount(t.app, 'starter');
    const res = await start('starter', SHORT_VIDEO, { prompt: 'waves' });
    const out = res.data!.startGeneration;
    expect(out.userErrors).toEqual([]);
    expect(out.balance).toEqual({ available: signup - 9 });
    expect(out.job).toMatchObject({ status: 'QUEUED', type: 'VIDEO', prompt: 'waves', costClass: 'VIDEO_SHORT', credits: 9, priceBookVersion: 1, queueClass: 'STANDARD', progress: 0, resultUrls: [], refunded: false, startedAt: null });
    const entries = await t.app.audit.query(`SELECT kind, amount, balance_after, job_id FROM ledger_entries WHERE account_id = 'starter' ORDER BY id`);
    expect(entries.rows.map((r) => [r.kind, r.amount, r.balance_after, r.job_id])).toEqual([
      ['GRANT', signup, signup, null],
      ['DEBIT', -9, signup - 9, out.job!.id],
    ]);
  });

  it('uses the queue class of the account tier', async () => {
    await openAccount(t.app, 'max-user', { tier: 'MAX' });
    const res = await start('max-user', HIGH_IMAGE);
    expect(res.data!.startGeneration.job!.queueClass).toBe('INSTANT');
  });

  it('refuses with INSUFFICIENT_CREDITS, names the packs that cover the shortfall and changes nothing', async () => {
    await openAccount(t.app, 'short', { balance: 4 });
    const before = await state('short');
    const res = await start('short', SHORT_VIDEO);
    const out = res.data!.startGeneration;
    expect(out.job).toBeNull();
    expect(out.userErrors).toEqual([{ code: 'INSUFFICIENT_CREDITS', message: 'This generation costs 9 credits and your balance is 4: 5 more needed', field: null }]);
    expect(out.topUpOptions).toEqual([{ code: 'STARTER', credits: 50 }, { code: 'CREATOR', credits: 200 }, { code: 'PRO', credits: 500 }]);
    expect(out.balance).toEqual({ available: 4 });
    expect(out.quote).toMatchObject({ credits: 9, affordable: false, balanceAfter: -5 });
    expect(await state('short')).toEqual(before);
  });

  it('names only the packs that cover a larger shortfall, smallest first', async () => {
    await openAccount(t.app, 'big-short', { tier: 'MAX', balance: 0 });
    const res = await start('big-short', { type: 'VIDEO', durationSeconds: 60, model: 'lumen-video-pro', videoQuality: 'PREMIUM', width: 4096, height: 4096 });
    const out = res.data!.startGeneration;
    expect(out.userErrors[0].code).toBe('INSUFFICIENT_CREDITS');
    const cost = out.quote!.credits;
    expect(cost).toBe(20 + 2 * 59 + 5 + 10 + 10);
    expect(out.topUpOptions.map((p) => p.code)).toEqual(['CREATOR', 'PRO']);
  });

  it('refuses settings outside the tier with FEATURE_NOT_IN_TIER and changes nothing', async () => {
    await openAccount(t.app, 'free-user');
    const before = await state('free-user');
    const res = await start('free-user', { type: 'IMAGE', imageQuality: 'ULTRA' });
    const out = res.data!.startGeneration;
    expect(out.job).toBeNull();
    expect(out.userErrors).toEqual([{ code: 'FEATURE_NOT_IN_TIER', message: 'Your FREE plan does not include ULTRA_IMAGES; the CREATOR plan does', field: ['input', 'settings'] }]);
    expect(out.quote).toMatchObject({ credits: 5, missingFeatures: ['ULTRA_IMAGES'], requiredTier: 'CREATOR' });
    expect(await state('free-user')).toEqual(before);
  });

  it('refuses bad input with BAD_USER_INPUT and changes nothing', async () => {
    await openAccount(t.app, 'bad-input');
    const before = await state('bad-input');
    for (const [settings, prompt] of [
      [STANDARD_IMAGE, ''],
      [STANDARD_IMAGE, '   \n '],
      [STANDARD_IMAGE, 'x'.repeat(2001)],
      [{ type: 'IMAGE' }, 'p'],
      [{ type: 'VIDEO', durationSeconds: 61 }, 'p'],
      [{ type: 'VIDEO', durationSeconds: 5, count: 2 }, 'p'],
      [{ type: 'IMAGE', imageQuality: 'HIGH', count: 5 }, 'p'],
      [{ type: 'IMAGE', imageQuality: 'HIGH', model: 'nope' }, 'p'],
    ] as [GenerationSettingsInput, string][]) {
      const res = await start('bad-input', settings, { prompt });
      expect(res.errors?.[0].extensions!.code).toBe('BAD_USER_INPUT');
    }
    expect(await state('bad-input')).toEqual(before);
  });

  it('starts at the quoted price; refuses an expired quote, other settings and another user’s quote', async () => {
    await openAccount(t.app, 'quoter');
    await openAccount(t.app, 'other-quoter');
    const q = await t.app.gql(QuoteDocument, { settings: HIGH_IMAGE }, { sub: 'quoter' });
    const quote = q.data!.quote;
    expect(quote.credits).toBe(3);

    const mismatch = await start('quoter', STANDARD_IMAGE, { quoteId: quote.id });
    expect(mismatch.data!.startGeneration.userErrors.map((e) => e.code)).toEqual(['QUOTE_MISMATCH']);
    const foreign = await start('other-quoter', HIGH_IMAGE, { quoteId: quote.id });
    expect(foreign.data!.startGeneration.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);

    const ok = await start('quoter', HIGH_IMAGE, { quoteId: quote.id });
    expect(ok.data!.startGeneration.job).toMatchObject({ credits: 3, quoteId: quote.id });

    const late = (await t.app.gql(QuoteDocument, { settings: HIGH_IMAGE }, { sub: 'quoter' })).data!.quote;
    const before = await state('quoter');
    t.app.server.services.clock.advance(601_000);
    const expired = await start('quoter', HIGH_IMAGE, { quoteId: late.id });
    expect(expired.data!.startGeneration.userErrors.map((e) => e.code)).toEqual(['QUOTE_EXPIRED']);
    expect(await state('quoter')).toEqual(before);
  });

  it('replays a start with the same key and refuses the key with other input', async () => {
    await openAccount(t.app, 'retrier');
    const first = await start('retrier', HIGH_IMAGE, { idempotencyKey: 'gen-1' });
    const again = await start('retrier', HIGH_IMAGE, { idempotencyKey: 'gen-1' });
    expect(again.data!.startGeneration.job!.id).toBe(first.data!.startGeneration.job!.id);
    expect(again.data!.startGeneration.balance).toEqual({ available: signup - 3 });
    const other = await start('retrier', STANDARD_IMAGE, { idempotencyKey: 'gen-1' });
    expect(other.data!.startGeneration.userErrors.map((e) => e.code)).toEqual(['IDEMPOTENCY_KEY_REUSED']);
    expect((await state('retrier')).jobs).toHaveLength(1);
    expect((await state('retrier')).balance).toBe(signup - 3);
  });

  it('makes one job of 20 concurrent starts with one key, and every answer names it', async () => {
    await openAccount(t.app, 'duplicator');
    const results = await Promise.all(Array.from({ length: 20 }, () => start('duplicator', HIGH_IMAGE, { idempotencyKey: 'same-key' })));
    const ids = new Set(results.map((r) => r.data!.startGeneration.job?.id));
    expect(ids.size).toBe(1);
    expect([...ids][0]).toEqual(expect.any(String));
    expect(results.every((r) => r.data!.startGeneration.userErrors.length === 0)).toBe(true);
    const s = await state('duplicator');
    expect(s.jobs).toHaveLength(1);
    expect(s.balance).toBe(signup - 3);
    expect(s.entries.filter((e) => e.amount < 0)).toHaveLength(1);
  });

  it('decides each of many concurrent starts across accounts on its own: accepted, short of credits or outside the tier', async () => {
    await openAccount(t.app, 'mix-rich', { balance: 30 });
    await openAccount(t.app, 'mix-poor', { balance: 2 });
    await openAccount(t.app, 'mix-free');
    const results = await Promise.all([
      ...Array.from({ length: 8 }, () => start('mix-rich', HIGH_IMAGE)), // 24 of 30 credits
      ...Array.from({ length: 4 }, () => start('mix-poor', STANDARD_IMAGE)), // 2 accepted, 2 short
      start('mix-free', { type: 'IMAGE', imageQuality: 'ULTRA' }), // ULTRA is not in FREE
    ]);
    const codes = results.map((r) => r.data!.startGeneration.userErrors[0]?.code ?? 'OK');
    expect(codes.slice(0, 8)).toEqual(Array(8).fill('OK'));
    expect(codes.slice(8, 12).sort()).toEqual(['INSUFFICIENT_CREDITS', 'INSUFFICIENT_CREDITS', 'OK', 'OK']);
    expect(codes[12]).toBe('FEATURE_NOT_IN_TIER');
    expect((await state('mix-rich')).balance).toBe(6);
    expect((await state('mix-rich')).jobs).toHaveLength(8);
    expect((await state('mix-poor')).balance).toBe(0);
    expect((await state('mix-poor')).jobs).toHaveLength(2);
    expect((await state('mix-free')).balance).toBe(signup);
    expect((await state('mix-free')).jobs).toHaveLength(0);
  });

  it('does not hold up other accounts while accounts are locked by another transaction, then starts those once the lock is gone', async () => {
    await openAccount(t.app, 'held-a');
    await openAccount(t.app, 'held-b');
    await openAccount(t.app, 'free-runner');
    const holder = await t.app.audit.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM accounts WHERE id IN ('held-a', 'held-b') FOR UPDATE`);
      let heldDone = 0;
      // As many held starts as batches may run at once (START_CONCURRENCY 2): were they waited
      // for inside a batch, no other start could go until the lock is gone.
      const held = ['held-a', 'held-b'].map((sub) => start(sub, HIGH_IMAGE).then((r) => (heldDone++, r)));
      await new Promise((r) => setTimeout(r, 150));
      const others = await Promise.all(Array.from({ length: 5 }, () => start('free-runner', STANDARD_IMAGE)));
      expect(others.map((r) => r.data!.startGeneration.userErrors)).toEqual(Array(5).fill([]));
      expect(heldDone).toBe(0);
      await holder.query('COMMIT');
      for (const r of await Promise.all(held)) {
        expect(r.data!.startGeneration.userErrors).toEqual([]);
        expect(r.data!.startGeneration.balance).toEqual({ available: signup - 3 });
      }
    } finally {
      holder.release();
    }
    expect((await state('held-a')).jobs).toHaveLength(1);
    expect((await state('held-b')).jobs).toHaveLength(1);
    expect((await state('free-runner')).balance).toBe(signup - 5);
  });

  it('refuses a prompt or key holding a NUL character with BAD_USER_INPUT and changes nothing', async () => {
    await openAccount(t.app, 'nul-sender');
    const before = await state('nul-sender');
    for (const extra of [{ prompt: 'a\u0000b' }, { idempotencyKey: 'k\u0000' }]) {
      const r = await start('nul-sender', STANDARD_IMAGE, extra);
      expect(r.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    }
    expect(await state('nul-sender')).toEqual(before);
  });

  it('accepts exactly as many of 200 racing starts as the balance pays for, and leaves zero', async () => {
    await openAccount(t.app, 'racer', { balance: 63 }); // 21 jobs of 3 credits
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => start('racer', HIGH_IMAGE, { idempotencyKey: `race-${i}` })));
    const accepted = results.filter((r) => r.data?.startGeneration.job);
    const refused = results.filter((r) => r.data?.startGeneration.userErrors[0]?.code === 'INSUFFICIENT_CREDITS');
    expect(accepted).toHaveLength(21);
    expect(refused).toHaveLength(179);
    const s = await state('racer');
    expect(s.balance).toBe(0);
    expect(s.jobs).toHaveLength(21);
    expect(s.entries.filter((e) => e.amount < 0)).toHaveLength(21);
  });
});

describe('accounts of other roles', () => {
  it('opens an account for an admin or worker who quotes or generates for itself', async () => {
    const quoted = await t.app.gql(QuoteDocument, { settings: HIGH_IMAGE }, { sub: 'admin-quoter', role: Role.ADMIN });
    expect(quoted.errors).toBeUndefined();
    expect(quoted.data!.quote).toMatchObject({ credits: 3, affordable: true, balanceAfter: signup - 3 });
    const started = await t.app.gql(StartGenerationDocument, { input: { settings: HIGH_IMAGE, prompt: 'p' } }, worker('worker-maker'));
    expect(started.data!.startGeneration.job).toMatchObject({ credits: 3, status: 'QUEUED' });
  });
});

describe('the worker protocol', () => {
  it('hands out queued jobs by queue class, INSTANT first, then age', async () => {
    const tiers = [['q-std', 'FREE'], ['q-pri', 'CREATOR'], ['q-fast', 'PRO'], ['q-inst', 'MAX']] as const;
    for (const [sub, tier] of tiers) await openAccount(t.app, sub, { tier });
    // Drain what earlier tests left queued.
    while ((await t.app.gql(ClaimJobDocument, {}, worker('drain'))).data!.claimGenerationJob) { /* drained */ }
    const ids: Record<string, string[]> = {};
    for (const [sub] of [...tiers, ...tiers]) {
      const r = await start(sub, STANDARD_IMAGE);
      (ids[sub] ??= []).push(r.data!.startGeneration.job!.id);
    }
    const order: string[] = [];
    for (let i = 0; i < 8; i++) order.push((await t.app.gql(ClaimJobDocument, {}, worker())).data!.claimGenerationJob!.id);
    expect(order).toEqual([...ids['q-inst'], ...ids['q-fast'], ...ids['q-pri'], ...ids['q-std']]);
    expect((await t.app.gql(ClaimJobDocument, {}, worker())).data!.claimGenerationJob).toBeNull();
    for (const id of order) await t.app.gql(CompleteJobDocument, { jobId: id, resultUrls: [] }, worker());
  });

  it('runs a job: RUNNING for its worker, progress only forward, then SUCCEEDED with its results', async () => {
    await openAccount(t.app, 'runner');
    const id = (await start('runner', HIGH_IMAGE)).data!.startGeneration.job!.id;
    const { clock } = t.app.server.services;
    const before = clock.now().getTime();
    const claimed = await claim(id);
    expect(claimed).toMatchObject({ status: 'RUNNING', progress: 0 });
    // Started when it was claimed, by the service's clock.
    expect(Date.parse(claimed.startedAt!)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(claimed.startedAt!)).toBeLessThanOrEqual(clock.now().getTime());
    expect((await t.app.gql(ReportProgressDocument, { jobId: id, progress: 40 }, worker())).data!.reportGenerationProgress.progress).toBe(40);
    const back = await t.app.gql(ReportProgressDocument, { jobId: id, progress: 39 }, worker());
    expect(back.errors![0].extensions!.code).toBe('INVALID_STATE');
    const tooMuch = await t.app.gql(ReportProgressDocument, { jobId: id, progress: 101 }, worker());
    expect(tooMuch.errors![0].extensions!.code).toBe('BAD_USER_INPUT');
    const stranger = await t.app.gql(ReportProgressDocument, { jobId: id, progress: 90 }, worker('gpu-2'));
    expect(stranger.errors![0].extensions!.code).toBe('FORBIDDEN');
    const done = await t.app.gql(CompleteJobDocument, { jobId: id, resultUrls: ['https://cdn.example.com/a.png'] }, worker());
    expect(done.data!.completeGenerationJob).toMatchObject({ status: 'SUCCEEDED', progress: 100, resultUrls: ['https://cdn.example.com/a.png'], refunded: false });
    const again = await t.app.gql(FailJobDocument, { jobId: id, reason: 'late' }, worker());
    expect(again.errors![0].extensions!.code).toBe('INVALID_STATE');
    const row = await t.app.audit.query('SELECT status, progress FROM generation_jobs WHERE id = $1', [id]);
    expect(row.rows[0]).toEqual({ status: 'SUCCEEDED', progress: 100 });
    expect((await state('runner')).balance).toBe(signup - 3);
  });

  it('refuses worker operations to users, and reports on unknown or unclaimed jobs', async () => {
    await openAccount(t.app, 'not-a-worker');
    const id = (await start('not-a-worker', STANDARD_IMAGE)).data!.startGeneration.job!.id;
    const asUser = await t.app.gql(ClaimJobDocument, {}, { sub: 'not-a-worker' });
    expect(asUser.errors![0].extensions!.code).toBe('FORBIDDEN');
    const unclaimed = await t.app.gql(CompleteJobDocument, { jobId: id, resultUrls: [] }, worker());
    expect(unclaimed.errors![0].extensions!.code).toBe('INVALID_STATE');
    const unknown = await t.app.gql(FailJobDocument, { jobId: '00000000-0000-4000-8000-000000000000', reason: 'x' }, worker());
    expect(unknown.errors![0].extensions!.code).toBe('NOT_FOUND');
    const malformed = await t.app.gql(FailJobDocument, { jobId: 'not-an-id', reason: 'x' }, worker());
    expect(malformed.errors![0].extensions!.code).toBe('NOT_FOUND');
    expect((await state('not-a-worker')).jobs).toEqual([{ id, status: 'QUEUED' }]);
  });

  it('refuses a failure reason or result URL holding a NUL character with BAD_USER_INPUT, and the job runs on', async () => {
    await openAccount(t.app, 'nul-job');
    const id = (await start('nul-job', STANDARD_IMAGE)).data!.startGeneration.job!.id;
    await claim(id);
    const failed = await t.app.gql(FailJobDocument, { jobId: id, reason: 'gpu\u0000oom' }, worker());
    expect(failed.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(failed.errors?.[0]?.message).toBe('reason must not contain NUL characters');
    const done = await t.app.gql(CompleteJobDocument, { jobId: id, resultUrls: ['https://cdn.example/a\u0000.png'] }, worker());
    expect(done.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(done.errors?.[0]?.message).toMatch(/^not an http\(s\) URL/);
    const job = await t.app.gql(JobDocument, { id }, { sub: 'nul-job' });
    expect(job.data!.job!.status).toBe('RUNNING');
    expect((await state('nul-job')).balance).toBe(signup - 1);
  });

  it('refunds a failed job once, even when the failure is reported twice at the same time', async () => {
    await openAccount(t.app, 'failing');
    const id = (await start('failing', SHORT_VIDEO)).data!.startGeneration.job!.id;
    await claim(id);
    const [a, b] = await Promise.all([
      t.app.gql(FailJobDocument, { jobId: id, reason: 'GPU out of memory' }, worker()),
      t.app.gql(FailJobDocument, { jobId: id, reason: 'GPU out of memory' }, worker()),
    ]);
    const ok = [a, b].filter((r) => r.data?.failGenerationJob);
    const refused = [a, b].filter((r) => r.errors?.[0].extensions!.code === 'INVALID_STATE');
    expect(ok).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(ok[0].data!.failGenerationJob).toMatchObject({ status: 'FAILED', refunded: true, failureReason: 'GPU out of memory' });
    const refunds = await t.app.audit.query(`SELECT amount FROM ledger_entries WHERE job_id = $1 AND kind = 'REFUND'`, [id]);
    expect(refunds.rows).toEqual([{ amount: 9 }]);
    expect((await state('failing')).balance).toBe(signup);
  });

  it('fails and refunds a RUNNING job whose worker stopped reporting, once, with two instances sweeping', async () => {
    await openAccount(t.app, 'abandoned');
    const id = (await start('abandoned', HIGH_IMAGE)).data!.startGeneration.job!.id;
    await claim(id);
    const other: TestApp = await startTestApp({ TEST_CLOCK: '1', JOB_SWEEP_INTERVAL_MS: '3600000', JOB_LEASE_SECONDS: '60' }, t.app.databaseUrl);
    try {
      other.server.services.clock.setOffset(t.app.server.services.clock.offset); // one clock for both instances
      expect(await t.app.server.services.workers.sweepExpiredLeases()).not.toContain(id);
      t.app.server.services.clock.advance(61_000);
      other.server.services.clock.advance(61_000);
      const swept = await Promise.all([
        t.app.server.services.workers.sweepExpiredLeases(),
        other.server.services.workers.sweepExpiredLeases(),
        t.app.server.services.workers.sweepExpiredLeases(),
      ]);
      expect(swept.flat().filter((j) => j === id)).toHaveLength(1);
      const row = await t.app.audit.query('SELECT status, refunded, failure_reason FROM generation_jobs WHERE id = $1', [id]);
      expect(row.rows[0]).toEqual({ status: 'FAILED', refunded: true, failure_reason: 'No report from the worker for 60 s: lease expired' });
      const refunds = await t.app.audit.query(`SELECT count(*)::int AS n FROM ledger_entries WHERE job_id = $1 AND kind = 'REFUND'`, [id]);
      expect(refunds.rows[0].n).toBe(1);
      expect((await state('abandoned')).balance).toBe(signup);
    } finally {
      await other.server.stop();
      await other.audit.end();
    }
  });

  it('lets a job in progress finish after the balance reaches zero', async () => {
    await openAccount(t.app, 'spent', { balance: 9 });
    const id = (await start('spent', SHORT_VIDEO)).data!.startGeneration.job!.id;
    await claim(id);
    expect((await state('spent')).balance).toBe(0);
    const refused = await start('spent', STANDARD_IMAGE);
    expect(refused.data!.startGeneration.userErrors[0].code).toBe('INSUFFICIENT_CREDITS');
    await t.app.gql(ReportProgressDocument, { jobId: id, progress: 80 }, worker());
    const done = await t.app.gql(CompleteJobDocument, { jobId: id, resultUrls: ['https://cdn.example.com/v.mp4'] }, worker());
    expect(done.data!.completeGenerationJob.status).toBe('SUCCEEDED');
    const jobs = await t.app.gql(MyJobsDocument, { first: 10 }, { sub: 'spent' });
    expect(jobs.data!.me.balance.available).toBe(0);
    expect(jobs.data!.me.jobs.edges.map((e) => [e.node.status, e.node.resultUrls])).toEqual([['SUCCEEDED', ['https://cdn.example.com/v.mp4']]]);
  });
});

describe('canceling and reading jobs', () => {
  it('cancels a QUEUED job and gives its credits back to the lots they came from', async () => {
    await openAccount(t.app, 'canceler');
    const id = (await start('canceler', SHORT_VIDEO)).data!.startGeneration.job!.id;
    const res = await t.app.gql(CancelGenerationDocument, { jobId: id }, { sub: 'canceler' });
    expect(res.data!.cancelGeneration.userErrors).toEqual([]);
    expect(res.data!.cancelGeneration.job).toMatchObject({ status: 'CANCELED', refunded: true });
    expect(res.data!.cancelGeneration.balance).toEqual({ available: signup });
    const lots = await t.app.audit.query(`SELECT granted, remaining FROM credit_lots WHERE account_id = 'canceler'`);
    expect(lots.rows).toEqual([{ granted: signup, remaining: signup }]);
    const again = await t.app.gql(CancelGenerationDocument, { jobId: id }, { sub: 'canceler' });
    expect(again.data!.cancelGeneration.userErrors.map((e) => e.code)).toEqual(['INVALID_STATE']);
    expect((await state('canceler')).balance).toBe(signup);
  });

  it('asks a RUNNING job to stop instead of cancelling it at once; completed anyway, it is charged in full', async () => {
    await openAccount(t.app, 'too-late');
    const id = (await start('too-late', HIGH_IMAGE)).data!.startGeneration.job!.id;
    await claim(id);
    const res = await t.app.gql(CancelGenerationDocument, { jobId: id }, { sub: 'too-late' });
    expect(res.data!.cancelGeneration.userErrors).toEqual([]);
    expect(res.data!.cancelGeneration.job!.status).toBe('RUNNING');
    expect(res.data!.cancelGeneration.balance).toEqual({ available: signup - 3 });
    const done = await t.app.gql(CompleteJobDocument, { jobId: id, resultUrls: [] }, worker());
    expect(done.data!.completeGenerationJob.status).toBe('SUCCEEDED');
    expect((await state('too-late')).balance).toBe(signup - 3);
  });

  it('shows a user only their own jobs, filtered by status, newest first', async () => {
    await openAccount(t.app, 'reader');
    await openAccount(t.app, 'snoop');
    const a = (await start('reader', STANDARD_IMAGE)).data!.startGeneration.job!.id;
    const b = (await start('reader', HIGH_IMAGE)).data!.startGeneration.job!.id;
    await t.app.gql(CancelGenerationDocument, { jobId: a }, { sub: 'reader' });
    const all = await t.app.gql(MyJobsDocument, { first: 10 }, { sub: 'reader' });
    expect(all.data!.me.jobs.totalCount).toBe(2);
    expect(all.data!.me.jobs.edges.map((e) => e.node.id)).toEqual([b, a]);
    const canceled = await t.app.gql(MyJobsDocument, { first: 10, status: 'CANCELED' }, { sub: 'reader' });
    expect(canceled.data!.me.jobs.edges.map((e) => e.node.id)).toEqual([a]);
    expect((await t.app.gql(JobDocument, { id: b }, { sub: 'reader' })).data!.job!.id).toBe(b);
    expect((await t.app.gql(JobDocument, { id: b }, { sub: 'snoop' })).data!.job).toBeNull();
    expect((await t.app.gql(JobDocument, { id: 'garbage' }, { sub: 'snoop' })).data!.job).toBeNull();
    const cancelOther = await t.app.gql(CancelGenerationDocument, { jobId: b }, { sub: 'snoop' });
    expect(cancelOther.data!.cancelGeneration.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
    expect((await t.app.gql(MyJobsDocument, { first: 10 }, { sub: 'snoop' })).data!.me.jobs.totalCount).toBe(0);
  });
});

describe('jobUpdated', () => {
  it('pushes every state and progress change of the caller’s own jobs, and none to another user', async () => {
    await openAccount(t.app, 'watcher');
    await openAccount(t.app, 'bystander');
    const mine = subscribe(t.app.ws({ sub: 'watcher' }), JobUpdatedDocument, {});
    const theirs = subscribe(t.app.ws({ sub: 'bystander' }), JobUpdatedDocument, {});
    // Live once a job of each user is announced.
    const probe = async (sub: string, s: typeof mine) => {
      for (let i = 0; i < 100 && s.events.length === 0; i++) {
        const id = (await start(sub, STANDARD_IMAGE)).data!.startGeneration.job!.id;
        await t.app.gql(CancelGenerationDocument, { jobId: id }, { sub });
        await new Promise((r) => setTimeout(r, 30));
      }
      s.events.length = 0;
    };
    await probe('watcher', mine);
    await probe('bystander', theirs);
    await new Promise((r) => setTimeout(r, 100));
    mine.events.length = 0;
    theirs.events.length = 0;

    const id = (await start('watcher', HIGH_IMAGE)).data!.startGeneration.job!.id;
    await claim(id);
    await t.app.gql(ReportProgressDocument, { jobId: id, progress: 50 }, worker());
    await t.app.gql(CompleteJobDocument, { jobId: id, resultUrls: ['https://cdn.example.com/x.png'] }, worker());
    const events = await mine.waitFor(4);
    expect(events.map((e) => [e.jobUpdated.id, e.jobUpdated.status, e.jobUpdated.progress])).toEqual([
      [id, 'QUEUED', 0],
      [id, 'RUNNING', 0],
      [id, 'RUNNING', 50],
      [id, 'SUCCEEDED', 100],
    ]);
    expect(events[3].jobUpdated.resultUrls).toEqual(['https://cdn.example.com/x.png']);
    await new Promise((r) => setTimeout(r, 200));
    expect(theirs.events).toEqual([]);
    await mine.dispose();
    await theirs.dispose();
  });

  it('follows one job when given its id', async () => {
    await openAccount(t.app, 'single');
    const first = (await start('single', STANDARD_IMAGE)).data!.startGeneration.job!.id;
    const client = t.app.ws({ sub: 'single' });
    const one = subscribe(client, JobUpdatedDocument, { jobId: first });
    // The job as it is now comes first.
    expect((await one.waitFor(1)).map((e) => [e.jobUpdated.id, e.jobUpdated.status, e.jobUpdated.refunded])).toEqual([[first, 'QUEUED', false]]);
    const all = subscribe(client, JobUpdatedDocument, {}); // on the same socket, registered after `one`
    for (let i = 0; i < 100 && all.events.length === 0; i++) {
      const other = (await start('single', STANDARD_IMAGE)).data!.startGeneration.job!.id;
      await t.app.gql(CancelGenerationDocument, { jobId: other }, { sub: 'single' });
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(one.events).toHaveLength(1); // other jobs' events do not reach it
    await t.app.gql(CancelGenerationDocument, { jobId: first }, { sub: 'single' });
    const events = await one.waitFor(2);
    expect(events.map((e) => [e.jobUpdated.id, e.jobUpdated.status, e.jobUpdated.refunded])).toEqual([[first, 'QUEUED', false], [first, 'CANCELED', true]]);
    await new Promise((r) => setTimeout(r, 100));
    expect(one.events).toHaveLength(2);
    await one.dispose();
    await all.dispose();
  });
});

describe('the simulated worker', () => {
  it('takes a queued job through the worker protocol to SUCCEEDED, with placeholder results', async () => {
    const sim = await startTestApp({ SIMULATED_WORKER: '1' });
    try {
      await openAccount(sim, 'demo');
      const started = Date.now();
      const id = (await sim.gql(StartGenerationDocument, { input: { settings: { type: 'IMAGE', imageQuality: 'HIGH', count: 2 }, prompt: 'p' } }, { sub: 'demo' })).data!.startGeneration.job!.id;
      let job: Awaited<ReturnType<typeof sim.gql<any, any>>>['data'];
      for (;;) {
        job = (await sim.gql(JobDocument, { id }, { sub: 'demo' })).data;
        if (job!.job!.status === 'SUCCEEDED' || Date.now() - started > 30_000) break; // a wait, not a latency bound
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(job!.job).toMatchObject({
        status: 'SUCCEEDED',
        progress: 100,
        resultUrls: [`https://results.example.invalid/${id}/1.png`, `https://results.example.invalid/${id}/2.png`],
        refunded: false,
      });
      const worker = await sim.audit.query('SELECT worker_id FROM generation_jobs WHERE id = $1', [id]);
      expect(worker.rows[0].worker_id).toBe('simulated-worker');
      await sim.checkInvariants();
    } finally {
      await sim.stop();
    }
  });
});

describe('the simulated worker with SIMULATED_WORKER_CONCURRENCY', () => {
  it('runs that many jobs at a time, and all of them to SUCCEEDED', async () => {
    const sim = await startTestApp({ SIMULATED_WORKER: '1', SIMULATED_WORKER_CONCURRENCY: '4', SIMULATED_WORKER_STEP_MS: '1500' });
    try {
      await openAccount(sim, 'busy-demo', { balance: 20 });
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push((await sim.gql(StartGenerationDocument, { input: { settings: { type: 'IMAGE', imageQuality: 'STANDARD' }, prompt: `p${i}` } }, { sub: 'busy-demo' })).data!.startGeneration.job!.id);
      const counts = async () => (await sim.rows<{ status: string; n: number }>(`SELECT status, count(*)::int AS n FROM generation_jobs WHERE account_id = 'busy-demo' GROUP BY status ORDER BY status`));
      let most = 0;
      await eventually(async () => {
        const running = (await counts()).find((c) => c.status === 'RUNNING')?.n ?? 0;
        most = Math.max(most, running);
        return running === 4;
      }, 30_000);
      await eventually(async () => {
        const c = await counts();
        most = Math.max(most, c.find((x) => x.status === 'RUNNING')?.n ?? 0);
        return c.length === 1 && c[0].status === 'SUCCEEDED';
      }, 60_000);
      expect(most).toBe(4); // never more than four at a time
      expect(await counts()).toEqual([{ status: 'SUCCEEDED', n: 6 }]);
      await sim.checkInvariants();
    } finally {
      await sim.stop();
    }
  }, 90_000);
});

describe('refunds into lots that closed meanwhile', () => {
  it('expires at once the refunded credits of a lot that expired while the job waited', async () => {
    await openAccount(t.app, 'late-cancel');
    const { clock, ledger, db } = t.app.server.services;
    await transaction(db, (x) =>
      ledger.grant(x, { accountId: 'late-cancel', amount: 9, source: LotSource.MONTHLY_ALLOWANCE, kind: LedgerEntryKind.GRANT, description: 'allowance', expiresAt: new Date(clock.now().getTime() + 3600_000) }),
    );
    const id = (await start('late-cancel', SHORT_VIDEO)).data!.startGeneration.job!.id; // 9 credits, from the expiring lot
    expect((await state('late-cancel')).balance).toBe(signup);
    clock.advance(2 * 3600_000);
    const res = await t.app.gql(CancelGenerationDocument, { jobId: id }, { sub: 'late-cancel' });
    expect(res.data!.cancelGeneration.userErrors).toEqual([]);
    expect((await state('late-cancel')).balance).toBe(signup);
    const tail = await t.app.audit.query(`SELECT kind, amount FROM ledger_entries WHERE account_id = 'late-cancel' ORDER BY id DESC LIMIT 2`);
    expect(tail.rows).toEqual([{ kind: 'EXPIRY', amount: -9 }, { kind: 'REFUND', amount: 9 }]);
  });
  it('never spends credits of a lot whose expiry passed, even before the expiry sweep ran', async () => {
    await openAccount(t.app, 'stale-lot', { balance: 0 });
    const { clock, ledger, db } = t.app.server.services;
    await transaction(db, (x) =>
      ledger.grant(x, { accountId: 'stale-lot', amount: 9, source: LotSource.MONTHLY_ALLOWANCE, kind: LedgerEntryKind.GRANT, description: 'allowance', expiresAt: new Date(clock.now().getTime() + 3600_000) }),
    );
    clock.advance(2 * 3600_000); // the lot expired; the sweep (hourly here) has not run
    const res = await start('stale-lot', HIGH_IMAGE);
    expect(res.data!.startGeneration.userErrors.map((e) => e.code)).toEqual(['INSUFFICIENT_CREDITS']);
    expect(res.data!.startGeneration.balance).toEqual({ available: 0 });
    const s = await state('stale-lot');
    expect(s.balance).toBe(0);
    expect(s.jobs).toHaveLength(0);
    const tail = await t.app.audit.query(`SELECT kind, amount FROM ledger_entries WHERE account_id = 'stale-lot' ORDER BY id DESC LIMIT 1`);
    expect(tail.rows).toEqual([{ kind: 'EXPIRY', amount: -9 }]);
  });
});
