/**
 * The commands of the model-based test. Each one acts through the real API, holds the answer
 * to what the model predicts (userError codes, statuses, balances), updates the model, and then
 * compares every account it touched with the model in full (system.ts checkAccount).
 */
import fc from 'fast-check';
import type { SandboxProvider } from '../../../src/modules/billing/sandbox-provider';
import {
  addAllowance,
  addLot,
  addMonths,
  available,
  boughtThisMonth,
  buyAutomatically,
  creditsUsedSince,
  effectiveTier,
  endPlan,
  fell,
  floorJustBelow,
  hourOf,
  priceOf,
  QUEUE_RANK,
  refundJob,
  unrenderedShare,
  take,
  tierAllows,
  tierOf,
  timePasses,
  type MAccount,
  type MJob,
  type Model,
  type MPurchase,
  type QueueClass,
  type Settings,
  type TierCode,
} from './model';
import { checkAccount, checkAll, monthOf, type Real } from './system';

export const ACCOUNTS = 3;

/** Executed commands by name, and outcomes seen (the report's counts, and coverage). */
export const executed = new Map<string, number>();
export const outcomes = new Map<string, number>();
export const timings = new Map<string, number>();
export function note(what: string): void {
  outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
}

abstract class Cmd implements fc.AsyncCommand<Model, Real> {
  abstract readonly name: string;
  check(_m: Readonly<Model>): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    executed.set(this.name, (executed.get(this.name) ?? 0) + 1);
    const t0 = Date.now();
    m.month = monthOf(r);
    try {
      await this.act(m, r);
    } finally {
      timings.set(this.name, (timings.get(this.name) ?? 0) + Date.now() - t0);
      for (const n of m.notes.splice(0)) note(n);
    }
  }
  protected abstract act(m: Model, r: Real): Promise<void>;
  abstract toString(): string;
}

const codes = (errs: { code: string }[] | undefined) => (errs ?? []).map((e) => e.code);

function expectEq<T>(what: string, actual: T, expected: T): void {
  try {
    expect(actual).toEqual(expected);
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
}

const allJobs = (m: Model) => m.accounts.flatMap((a) => a.jobs);
const owner = (m: Model, job: MJob) => m.accounts.find((a) => a.id === job.account)!;
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

// ---------------------------------------------------------------- purchases

class BuyPack extends Cmd {
  readonly name = 'buyPack';
  constructor(readonly acct: number, readonly pack: number) {
    super();
  }
  toString() {
    return `BuyPack(${this.acct}, #${this.pack})`;
  }
  protected async act(m: Model, r: Real) {
    const a = m.accounts[this.acct];
    const pack = m.catalog.packs[this.pack % m.catalog.packs.length];
    const d = await r.data<{ purchaseCreditPack: { purchase: { id: string; status: string } | null; balance: { available: number } | null; userErrors: { code: string }[] } }>(
      `mutation($p: String!) { purchaseCreditPack(input: { packCode: $p }) { purchase { id status } balance { available } userErrors { code } } }`,
      { p: pack.code },
      { sub: a.id },
    );
    const out = d.purchaseCreditPack;
    const declined = a.declines > 0;
    expectEq(`${this} userErrors`, codes(out.userErrors), declined ? ['PAYMENT_FAILED'] : []);
    expectEq(`${this} purchase status`, out.purchase?.status, declined ? 'FAILED' : 'COMPLETED');
    const p: MPurchase = {
      id: out.purchase!.id, kind: 'CREDIT_PACK', status: declined ? 'FAILED' : 'COMPLETED', credits: pack.credits, amountCents: pack.priceCents, tier: null,
      completedHour: m.hour, seq: ++m.seq, refundRequested: false, periodStart: null,
    };
    a.purchases.push(p);
    if (declined) a.declines--;
    else {
      addLot(m, a, 'PACK_PURCHASE', pack.credits, null, null, p);
      expectEq(`${this} balance`, out.balance?.available, available(a));
    }
    await checkAccount(m, r, a, this.toString());
  }
}

/** The payment provider will decline this account's next charge (a pack, a plan, a renewal). */
class CardDeclines extends Cmd {
  readonly name = 'cardDeclines';
  constructor(readonly acct: number) {
    super();
  }
  toString() {
    return `CardDeclines(${this.acct})`;
  }
  protected async act(m: Model, r: Real) {
    const a = m.accounts[this.acct];
    (r.app.server.services.payments as SandboxProvider).failNext(1, 'card declined (model test)', a.id);
    a.declines++;
  }
}

class RequestRefund extends Cmd {
  readonly name = 'requestRefund';
  constructor(readonly acct: number, readonly pick: number, readonly foreign: boolean) {
    super();
  }
  check(m: Readonly<Model>) {
    return this.foreign || m.accounts[this.acct].purchases.length > 0;
  }
  toString() {
    return `RequestRefund(${this.acct}, #${this.pick}${this.foreign ? ', any account' : ''})`;
  }
  protected async act(m: Model, r: Real) {
    const a = m.accounts[this.acct];
    const all = (this.foreign ? m.accounts : [a]).flatMap((x) => x.purchases.map((p) => ({ p, owner: x })));
    const chosen = all[this.pick % (all.length + (this.foreign ? 1 : 0))];
    const purchaseId = chosen?.p.id ?? UNKNOWN_ID;
    const d = await r.data<{ requestRefund: { refundRequest: { status: string; creditsRevoked: number; purchase: { id: string; status: string } } | null; userErrors: { code: string }[] } }>(
      `mutation($id: ID!) { requestRefund(input: { purchaseId: $id, reason: "model test" }) {
         refundRequest { status creditsRevoked purchase { id status } } userErrors { code } } }`,
      { id: purchaseId },
      { sub: a.id },
    );
    const out = d.requestRefund;
    const target = chosen ? `${chosen.p.kind} ${chosen.p.status} of ${chosen.owner.id}` : 'an unknown id';
    const expect = this.decide(m, a, chosen && chosen.owner === a ? chosen.p : undefined);
    note(`refund ${chosen ? chosen.p.kind : 'unknown'}: ${expect.status ?? ''} ${expect.codes.join(',') || 'ok'}`);
    expectEq(`${this} on ${target}: userErrors`, codes(out.userErrors), expect.codes);
    if (expect.status) expectEq(`${this} request status`, out.refundRequest?.status, expect.status);
    if (expect.revoked !== undefined) expectEq(`${this} credits revoked`, out.refundRequest?.creditsRevoked, expect.revoked);
    await checkAccount(m, r, a, this.toString());
  }

  /** The refund policy (API.md, docs/BILLING.md), applied to the model. */
  private decide(m: Model, a: MAccount, p: MPurchase | undefined): { codes: string[]; status?: string; revoked?: number } {
    if (!p) return { codes: ['NOT_FOUND'] };
    if (p.refundRequested) return { codes: ['REFUND_ALREADY_REQUESTED'] };
    if (p.status !== 'COMPLETED') return { codes: ['INVALID_STATE'] };
    if (p.kind === 'PLAN') {
      const latest = a.purchases.filter((q) => q.kind === 'PLAN' && q.status === 'COMPLETED').sort((x, y) => y.seq - x.seq)[0];
      if (latest !== p) return { codes: ['INVALID_STATE'] };
    }
    // A DENIED request does not block a later one (BILLING.md); an approved one does.
    if (m.hour - p.completedHour >= 24) return { codes: ['REFUND_WINDOW_EXPIRED'], status: 'DENIED' };
    if (creditsUsedSince(a, p) > 0) return { codes: ['CREDITS_ALREADY_USED'], status: 'DENIED' };
    p.refundRequested = true;
    // Approved: the purchase's unspent credits are withdrawn; a plan ends (an upgrade reverts).
    let revoked = 0;
    for (const lot of a.lots) {
      if (lot.purchase === p) {
        revoked += lot.remaining;
        lot.remaining = 0;
      }
    }
    p.status = 'REFUNDED';
    // A withdrawal asked for (a refund) is not a fall: it warns of nothing and buys nothing.
    if (p.kind === 'PLAN') {
      const plan = a.plan;
      const previous = plan
        ? a.purchases
            .filter((q) => q !== p && q.kind === 'PLAN' && q.status === 'COMPLETED' && q.periodStart! >= plan.periodStart)
            .sort((x, y) => y.seq - x.seq)[0]
        : undefined;
      if (plan && previous && p.periodStart! > plan.periodStart) a.tier = previous.tier!;
      else endPlan(a);
    }
    return { codes: [], status: 'APPROVED', revoked };
  }
}

// ---------------------------------------------------------------- generations

/** Any settings of the space: qualities, models (standard and premium), sizes, counts, durations. */
const anySettings: fc.Arbitrary<Settings> = fc.oneof(
  { weight: 3, arbitrary: fc.record({
    type: fc.constant('IMAGE' as const),
    model: fc.constantFrom('lumen-image', 'lumen-image-fast', 'lumen-image-pro'),
    imageQuality: fc.constantFrom('STANDARD' as const, 'HIGH' as const, 'ULTRA' as const),
    count: fc.integer({ min: 1, max: 4 }),
    size: fc.constantFrom([1024, 1024], [512, 768], [1536, 1024], [2048, 2048], [4096, 2048]),
  }).map(({ size, ...s }) => ({ ...s, width: size[0], height: size[1] })) },
  { weight: 2, arbitrary: fc.record({
    type: fc.constant('VIDEO' as const),
    model: fc.constantFrom('lumen-video', 'lumen-video', 'lumen-video-pro'),
    durationSeconds: fc.integer({ min: 1, max: 14 }),
    videoQuality: fc.constantFrom('STANDARD' as const, 'STANDARD' as const, 'PREMIUM' as const),
    size: fc.constantFrom([1024, 576], [1920, 1080], [3840, 2160]),
  }).map(({ size, ...s }) => ({ ...s, width: size[0], height: size[1] })) },
);

/** Settings every tier allows (most accounts are on FREE): standard and high images, short videos. */
const freeSettings: fc.Arbitrary<Settings> = fc.oneof(
  { weight: 3, arbitrary: fc.record({
    type: fc.constant('IMAGE' as const),
    model: fc.constantFrom('lumen-image', 'lumen-image-fast'),
    imageQuality: fc.constantFrom('STANDARD' as const, 'HIGH' as const),
    count: fc.integer({ min: 1, max: 4 }),
    size: fc.constantFrom([1024, 1024], [512, 768]),
  }).map(({ size, ...s }) => ({ ...s, width: size[0], height: size[1] })) },
  { weight: 1, arbitrary: fc.record({
    type: fc.constant('VIDEO' as const),
    model: fc.constant('lumen-video'),
    durationSeconds: fc.integer({ min: 1, max: 5 }),
    videoQuality: fc.constant('STANDARD' as const),
    size: fc.constantFrom([1024, 576], [768, 768]),
  }).map(({ size, ...s }) => ({ ...s, width: size[0], height: size[1] })) },
);

export const settingsArb: fc.Arbitrary<Settings> = fc.oneof({ weight: 3, arbitrary: freeSettings }, { weight: 2, arbitrary: anySettings });

function describeSettings(s: Settings): string {
  return s.type === 'IMAGE'
    ? `IMAGE ${s.imageQuality} ${s.model} ${s.width}x${s.height} x${s.count}`
    : `VIDEO ${s.durationSeconds}s ${s.videoQuality} ${s.model} ${s.width}x${s.height}`;
}

class StartGeneration extends Cmd {
  readonly name: string;
  /** With `quotePick`: start at a held price — the quote's own settings, or (`otherSettings`) these. */
  constructor(readonly acct: number, readonly settings: Settings, readonly quotePick?: number, readonly otherSettings = false) {
    super();
    this.name = quotePick === undefined ? 'startGeneration' : 'startWithQuote';
  }
  check(m: Readonly<Model>) {
    return this.quotePick === undefined || m.accounts.some((a) => a.quotes.length > 0);
  }
  toString() {
    return this.quotePick === undefined
      ? `StartGeneration(${this.acct}, ${describeSettings(this.settings)})`
      : `StartWithQuote(${this.acct}, quote #${this.quotePick}${this.otherSettings ? `, other settings ${describeSettings(this.settings)}` : ''})`;
  }
  protected async act(m: Model, r: Real) {
    const a = m.accounts[this.acct];
    // Mostly the account's own quotes (any account's when it has none).
    const own = this.quotePick !== undefined && this.quotePick % 4 !== 0 && a.quotes.length > 0;
    const quotes = (own ? [a] : m.accounts).flatMap((x) => x.quotes.map((q) => ({ q, owner: x })));
    const held = this.quotePick === undefined ? undefined : quotes[Math.floor(this.quotePick / 4) % quotes.length];
    const settings = held && !this.otherSettings ? held.q.settings : this.settings;
    const d = await r.data<{
      startGeneration: { job: { id: string; status: string; credits: number; queueClass: QueueClass; createdAt: string } | null; balance: { available: number } | null; userErrors: { code: string }[] };
    }>(
      `mutation($s: GenerationSettingsInput!, $q: ID) { startGeneration(input: { settings: $s, prompt: "model test", quoteId: $q }) {
         job { id status credits queueClass createdAt } balance { available } userErrors { code } } }`,
      { s: settings, q: held?.q.id ?? null },
      { sub: a.id },
    );
    const out = d.startGeneration;
    const tier = effectiveTier(m, a);
    const price = held ? held.q.credits : priceOf(m.catalog, settings);
    const what = `${this} (price ${price}, balance ${available(a)}, ${tier.code})`;
    const refuse = (code: string) => {
      note(`${this.name}: ${code}`);
      expectEq(`${what} userErrors`, codes(out.userErrors), [code]);
      expectEq(`${what} job`, out.job, null);
    };
    if (held && held.owner !== a) refuse('NOT_FOUND');
    // Expired over QUOTE_RETENTION_HOURS (24) ago and no job started from it: deleted by the sweep.
    else if (held && m.hour - held.q.hour >= 25 && !held.q.started) refuse('NOT_FOUND');
    else if (held && m.hour > held.q.hour) refuse('QUOTE_EXPIRED');
    else if (held && JSON.stringify(settings) !== JSON.stringify(held.q.settings)) refuse('QUOTE_MISMATCH');
    else if (!tierAllows(m.catalog, tier, settings)) refuse('FEATURE_NOT_IN_TIER');
    else if (available(a) < price && !this.buysFirst(m, a, price)) refuse('INSUFFICIENT_CREDITS');
    else {
      const before = available(a);
      expectEq(`${what} userErrors`, codes(out.userErrors), []);
      expectEq(`${what} job`, { status: out.job?.status, credits: out.job?.credits, queueClass: out.job?.queueClass }, { status: 'QUEUED', credits: price, queueClass: tier.queueClass });
      const takes = take(a, price);
      note(`${this.name}: ok ${tier.queueClass}${takes.length > 1 ? ' (several lots)' : ''}`);
      a.jobs.push({ id: out.job!.id, account: a.id, credits: price, status: 'QUEUED', refunded: false, returned: 0, progress: 0, cancelRequested: false, queueClass: tier.queueClass, createdAt: out.job!.createdAt, seq: ++m.seq, takes });
      if (held) held.q.started = true;
      expectEq(`${what} balance`, out.balance?.available, available(a));
      fell(m, a, before);
    }
    await checkAccount(m, r, a, this.toString());
  }

  /** Auto top-up's buy-first (API.md): on, under its cap, and its pack covers the shortfall — bought now; true when paid. */
  private buysFirst(m: Model, a: MAccount, price: number): boolean {
    const t = a.autoTopUp;
    if (!t?.enabled || t.pack.credits < price - available(a) || boughtThisMonth(m, t) >= t.maxPerMonth) return false;
    note(`${this.name}: short, buys first`);
    return buyAutomatically(m, a);
  }
}

/** The price of settings before starting: held for 10 minutes. */
class Quote extends Cmd {
  readonly name = 'quote';
  constructor(readonly acct: number, readonly settings: Settings) {
    super();
  }
  toString() {
    return `Quote(${this.acct}, ${describeSettings(this.settings)})`;
  }
  protected async act(m: Model, r: Real) {
    const a = m.accounts[this.acct];
    const d = await r.data<{ quote: { id: string; credits: number; affordable: boolean; balanceAfter: number; missingFeatures: string[] } }>(
      `query($s: GenerationSettingsInput!) { quote(settings: $s) { id credits affordable balanceAfter missingFeatures } }`,
      { s: this.settings },
      { sub: a.id },
    );
    const price = priceOf(m.catalog, this.settings);
    const q = d.quote;
    expectEq(`${this}`, { credits: q.credits, affordable: q.affordable, balanceAfter: q.balanceAfter, allowed: q.missingFeatures.length === 0 }, {
      credits: price, affordable: available(a) >= price, balanceAfter: available(a) - price, allowed: tierAllows(m.catalog, effectiveTier(m, a), this.settings),
    });
    a.quotes.push({ id: q.id, settings: this.settings, credits: price, hour: m.hour });
  }
}

class CancelGeneration extends Cmd {
  readonly name = 'cancelGeneration';
  constructor(readonly acct: number, readonly pick: number, readonly foreign: boolean, readonly queuedFirst: boolean) {
    super();
  }
  check(m: Readonly<Model>) {
    return this.foreign || m.accounts[this.acct].jobs.length > 0;
  }
  toString() {
    return `CancelGeneration(${this.acct}, #${this.pick}${this.foreign ? ', any account' : this.queuedFirst ? ', a queued one' : ''})`;
  }
  protected async act(m: Model, r: Real) {
    const a = m.accounts[this.acct];
    const queued = a.jobs.filter((j) => j.status === 'QUEUED');
    const jobs = this.foreign ? allJobs(m) : this.queuedFirst && queued.length ? queued : a.jobs;
    const job: MJob | undefined = jobs[this.pick % (jobs.length + (this.foreign ? 1 : 0))];
    note(`cancel: ${!job ? 'unknown' : job.account !== a.id ? 'foreign' : job.status}`);
    const d = await r.data<{ cancelGeneration: { job: { status: string; refunded: boolean } | null; balance: { available: number } | null; userErrors: { code: string }[] } }>(
      `mutation($id: ID!) { cancelGeneration(jobId: $id) { job { status refunded } balance { available } userErrors { code } } }`,
      { id: job?.id ?? UNKNOWN_ID },
      { sub: a.id },
    );
    const out = d.cancelGeneration;
    const what = `${this} on ${job ? `a ${job.status} job of ${job.account}` : 'an unknown id'}`;
    if (!job || job.account !== a.id) {
      expectEq(`${what} userErrors`, codes(out.userErrors), ['NOT_FOUND']);
      expectEq(`${what} job`, out.job, null);
    } else if (job.status === 'RUNNING') {
      // Asked to stop: it runs on until its worker stops it (BILLING.md); nothing comes back yet.
      expectEq(`${what} userErrors`, codes(out.userErrors), []);
      job.cancelRequested = true;
      expectEq(`${what} job`, out.job, { status: 'RUNNING', refunded: false });
      expectEq(`${what} balance`, out.balance?.available, available(a));
    } else if (job.status !== 'QUEUED') {
      expectEq(`${what} userErrors`, codes(out.userErrors), ['INVALID_STATE']);
    } else {
      expectEq(`${what} userErrors`, codes(out.userErrors), []);
      job.status = 'CANCELED';
      refundJob(m, job);
      expectEq(`${what} job`, out.job, { status: 'CANCELED', refunded: true });
      expectEq(`${what} balance`, out.balance?.available, available(a));
    }
    await checkAccount(m, r, a, this.toString());
  }
}

type Ending = 'complete' | 'fail' | 'hold';

async function finish(m: Model, r: Real, job: MJob, ending: 'complete' | 'fail', what: string): Promise<void> {
  if (ending === 'complete') {
    const d = await r.data<{ completeGenerationJob: { status: string; refunded: boolean } }>(
      `mutation($id: ID!) { completeGenerationJob(jobId: $id, resultUrls: ["https://results.example.invalid/model.png"]) { status refunded } }`,
      { id: job.id },
      r.worker,
    );
    job.status = 'SUCCEEDED';
    expectEq(`${what} complete`, d.completeGenerationJob, { status: 'SUCCEEDED', refunded: false });
  } else if (job.cancelRequested) {
    // A job asked to stop that the worker fails is stopped: CANCELED, its unrendered share back.
    const d = await r.data<{ failGenerationJob: { status: string; refunded: boolean } }>(
      `mutation($id: ID!) { failGenerationJob(jobId: $id, reason: "model test: stopped") { status refunded } }`,
      { id: job.id },
      r.worker,
    );
    stop(m, job);
    expectEq(`${what} fail of a job asked to stop`, d.failGenerationJob, { status: 'CANCELED', refunded: job.refunded });
  } else {
    const d = await r.data<{ failGenerationJob: { status: string; refunded: boolean } }>(
      `mutation($id: ID!) { failGenerationJob(jobId: $id, reason: "model test: GPU fault") { status refunded } }`,
      { id: job.id },
      r.worker,
    );
    job.status = 'FAILED';
    refundJob(m, job);
    expectEq(`${what} fail`, d.failGenerationJob, { status: 'FAILED', refunded: true });
  }
}

/** A running job asked to stop ends CANCELED, with its unrendered share back. */
function stop(m: Model, job: MJob): void {
  job.status = 'CANCELED';
  refundJob(m, job, unrenderedShare(job));
}

/** The worker reports progress on a job it holds (never backwards), and learns whether its owner asked to stop it. */
class ReportProgress extends Cmd {
  readonly name = 'reportProgress';
  constructor(readonly pick: number, readonly progress: number) {
    super();
  }
  check(m: Readonly<Model>) {
    return allJobs(m as Model).some((j) => j.status === 'RUNNING');
  }
  toString() {
    return `ReportProgress(#${this.pick}, ${this.progress})`;
  }
  protected async act(m: Model, r: Real) {
    const running = allJobs(m).filter((j) => j.status === 'RUNNING');
    const job = running[this.pick % running.length];
    const res = await r.raw<{ reportGenerationProgress: { progress: number; cancelRequested: boolean } }>(
      `mutation($id: ID!, $p: Int!) { reportGenerationProgress(jobId: $id, progress: $p) { progress cancelRequested } }`,
      { id: job.id, p: this.progress },
      r.worker,
    );
    note(`progress: ${this.progress < job.progress ? 'backwards' : job.cancelRequested ? 'asked to stop' : 'forwards'}`);
    if (this.progress < job.progress) {
      expectEq(`${this} error`, res.errors?.map((e) => e.extensions?.code), ['INVALID_STATE']);
    } else {
      job.progress = this.progress;
      expectEq(`${this}`, res.data?.reportGenerationProgress, { progress: this.progress, cancelRequested: job.cancelRequested });
    }
    await checkAccount(m, r, owner(m, job), this.toString());
  }
}

/** The worker stops a running job: CANCELED with its unrendered share back when its owner asked; refused otherwise. */
class AcknowledgeCancel extends Cmd {
  readonly name = 'acknowledgeCancel';
  constructor(readonly pick: number) {
    super();
  }
  check(m: Readonly<Model>) {
    return allJobs(m as Model).some((j) => j.status === 'RUNNING');
  }
  toString() {
    return `AcknowledgeCancel(#${this.pick})`;
  }
  protected async act(m: Model, r: Real) {
    const running = allJobs(m).filter((j) => j.status === 'RUNNING');
    const job = running[this.pick % running.length];
    const res = await r.raw<{ acknowledgeGenerationCancel: { status: string; refunded: boolean } }>(
      `mutation($id: ID!) { acknowledgeGenerationCancel(jobId: $id) { status refunded } }`,
      { id: job.id },
      r.worker,
    );
    note(`acknowledge cancel: ${job.cancelRequested ? `asked, at ${job.progress}%` : 'not asked'}`);
    if (!job.cancelRequested) {
      expectEq(`${this} error`, res.errors?.map((e) => e.extensions?.code), ['INVALID_STATE']);
    } else {
      stop(m, job);
      expectEq(`${this}`, res.data?.acknowledgeGenerationCancel, { status: 'CANCELED', refunded: job.refunded });
    }
    await checkAccount(m, r, owner(m, job), this.toString());
  }
}

/** A worker takes the next job: by queue class (INSTANT first), then age. */
class ClaimJob extends Cmd {
  readonly name: string;
  constructor(readonly ending: Ending, readonly evenIfEmpty = false) {
    super();
    this.name = `claim+${ending}`;
  }
  check(m: Readonly<Model>) {
    return this.evenIfEmpty || allJobs(m as Model).some((j) => j.status === 'QUEUED');
  }
  toString() {
    return `ClaimJob(${this.ending}${this.evenIfEmpty ? ', even if empty' : ''})`;
  }
  protected async act(m: Model, r: Real) {
    const queued = allJobs(m).filter((j) => j.status === 'QUEUED');
    const next = queued.sort((x, y) => QUEUE_RANK[x.queueClass] - QUEUE_RANK[y.queueClass] || x.seq - y.seq)[0];
    const d = await r.data<{ claimGenerationJob: { id: string; status: string } | null }>(`mutation { claimGenerationJob { id status } }`, undefined, r.worker);
    const claimed = d.claimGenerationJob;
    note(`claim: ${next ? next.queueClass : 'empty queue'}`);
    if (!next) {
      expectEq(`${this} on an empty queue`, claimed, null);
      return;
    }
    let job = next;
    if (claimed?.id !== next.id) {
      // Two jobs of one class created in the same millisecond are equally old: either may come first.
      const tie = queued.find((j) => j.id === claimed?.id && j.queueClass === next.queueClass && j.createdAt === next.createdAt);
      if (!tie) {
        const got = queued.find((j) => j.id === claimed?.id);
        throw new Error(`${this}: claimed ${claimed ? `${claimed.id} (${got ? `${got.queueClass}, #${got.seq}` : 'not a queued job of the model'})` : 'nothing'}, expected ${next.id} (${next.queueClass}, #${next.seq})`);
      }
      job = tie;
    }
    expectEq(`${this} status`, claimed?.status, 'RUNNING');
    job.status = 'RUNNING';
    if (this.ending !== 'hold') await finish(m, r, job, this.ending, this.toString());
    await checkAccount(m, r, owner(m, job), this.toString());
  }
}

/** The worker reports the end of a job it holds (whatever the balance did meanwhile). */
class FinishRunning extends Cmd {
  readonly name: string;
  constructor(readonly pick: number, readonly ending: 'complete' | 'fail') {
    super();
    this.name = `finish+${ending}`;
  }
  check(m: Readonly<Model>) {
    return allJobs(m as Model).some((j) => j.status === 'RUNNING');
  }
  toString() {
    return `FinishRunning(#${this.pick}, ${this.ending})`;
  }
  protected async act(m: Model, r: Real) {
    const running = allJobs(m).filter((j) => j.status === 'RUNNING');
    const job = running[this.pick % running.length];
    await finish(m, r, job, this.ending, this.toString());
    await checkAccount(m, r, owner(m, job), this.toString());
  }
}

/** Another worker reports on a job it does not hold: FORBIDDEN, nothing changes. */
class WrongWorker extends Cmd {
  readonly name = 'wrongWorker';
  constructor(readonly pick: number) {
    super();
  }
  check(m: Readonly<Model>) {
    return allJobs(m as Model).some((j) => j.status === 'RUNNING');
  }
  toString() {
    return `WrongWorker(#${this.pick})`;
  }
  protected async act(m: Model, r: Real) {
    const running = allJobs(m).filter((j) => j.status === 'RUNNING');
    const job = running[this.pick % running.length];
    const res = await r.raw(`mutation($id: ID!) { failGenerationJob(jobId: $id, reason: "not mine") { status } }`, { id: job.id }, r.otherWorker);
    expectEq(`${this} error`, res.errors?.map((e) => e.extensions?.code), ['FORBIDDEN']);
    await checkAccount(m, r, owner(m, job), this.toString());
  }
}

// ---------------------------------------------------------------- admin and time

class AdjustCredits extends Cmd {
  readonly name = 'adjustCredits';
  /** `drainTo`: take all but that many credits (the amount is computed from the model). */
  constructor(readonly acct: number, readonly n: number, readonly drainTo = false) {
    super();
  }
  private amount = 0;
  check(m: Readonly<Model>) {
    return !this.drainTo || available(m.accounts[this.acct]) > this.n;
  }
  toString() {
    return this.drainTo ? `AdjustCredits(${this.acct}, all but ${this.n})` : `AdjustCredits(${this.acct}, ${this.n})`;
  }
  protected async act(m: Model, r: Real) {
    const a = m.accounts[this.acct];
    this.amount = this.drainTo ? this.n - available(a) : this.n;
    const d = await r.data<{ adjustCredits: { balance: { available: number } | null; userErrors: { code: string }[] } }>(
      `mutation($id: ID!, $n: Int!) { adjustCredits(input: { accountId: $id, amount: $n, reason: "model test" }) { balance { available } userErrors { code } } }`,
      { id: a.id, n: this.amount },
      r.admin,
    );
    const out = d.adjustCredits;
    note(`adjust: ${this.amount > 0 ? 'grant' : available(a) < -this.amount ? 'INSUFFICIENT_CREDITS' : 'debit'}`);
    if (this.amount < 0 && available(a) < -this.amount) {
      expectEq(`${this} userErrors`, codes(out.userErrors), ['INSUFFICIENT_CREDITS']);
    } else {
      expectEq(`${this} userErrors`, codes(out.userErrors), []);
      const before = available(a);
      if (this.amount > 0) addLot(m, a, 'ADJUSTMENT', this.amount, null, null, null);
      else take(a, -this.amount);
      fell(m, a, before);
      expectEq(`${this} balance`, out.balance?.available, available(a));
    }
    await checkAccount(m, r, a, this.toString());
  }
}

class AdvanceClock extends Cmd {
  readonly name = 'advanceClock';
  constructor(readonly hours: number) {
    super();
  }
  toString() {
    return `AdvanceClock(${this.hours} h)`;
  }
  protected async act(m: Model, r: Real) {
    await r.data(`mutation($h: Float!) { advanceTestClock(hours: $h) }`, { h: this.hours }, r.admin);
    m.hour += this.hours;
    m.month = monthOf(r);
    timePasses(m);
    await checkAll(m, r, this.toString());
  }
}

/**
 * The clock moved to just before, onto, or just past an edge of one account: 24 hours after
 * its latest purchase (the refund window), or its plan's period end (renewal, expiry).
 */
class AdvanceToEdge extends Cmd {
  readonly name = 'advanceToEdge';
  constructor(readonly acct: number, readonly edge: 'refund window' | 'period end', readonly offset: -1 | 0 | 1) {
    super();
  }
  private hours(m: Readonly<Model>): number {
    const a = m.accounts[this.acct];
    let at: number | undefined;
    if (this.edge === 'refund window') {
      const latest = [...a.purchases].sort((x, y) => y.seq - x.seq)[0];
      if (latest) at = latest.completedHour + 24;
    } else if (a.plan) {
      at = hourOf(a.plan, a.plan.periodEnd);
    }
    return at === undefined ? 0 : at + this.offset - m.hour;
  }
  check(m: Readonly<Model>) {
    return this.hours(m) > 0;
  }
  toString() {
    return `AdvanceToEdge(${this.acct}, ${this.edge} ${this.offset < 0 ? '- 1 h' : this.offset > 0 ? '+ 1 h' : 'exactly'})`;
  }
  protected async act(m: Model, r: Real) {
    const hours = this.hours(m);
    await r.data(`mutation($h: Float!) { advanceTestClock(hours: $h) }`, { h: hours }, r.admin);
    m.hour += hours;
    m.month = monthOf(r);
    timePasses(m);
    await checkAll(m, r, `${this} (${hours} h)`);
  }
}

class ReadAll extends Cmd {
  readonly name = 'read';
  toString() {
    return 'ReadAll()';
  }
  protected async act(m: Model, r: Real) {
    await checkAll(m, r, this.toString());
  }
}

// ---------------------------------------------------------------- plans (monthly)

interface PlanPayload {
  changePlan: {
    plan: { tier: { code: TierCode }; status: string; currentPeriodStart: string | null; currentPeriodEnd: string | null } | null;
    purchase: { id: string; status: string; credits: number; amountCents: number } | null;
    balance: { available: number } | null;
    userErrors: { code: string }[];
  };
}

class ChangePlan extends Cmd {
  readonly name = 'changePlan';
  constructor(readonly acct: number, readonly tier: TierCode) {
    super();
  }
  toString() {
    return `ChangePlan(${this.acct}, ${this.tier} MONTHLY)`;
  }
  protected async act(m: Model, r: Real) {
    const a = m.accounts[this.acct];
    // The system's clock runs on from the model's whole hours: an upgrade is prorated at some
    // instant between these two readings.
    const sentAt = r.app.server.services.clock.now().getTime();
    const d = await r.data<PlanPayload>(
      `mutation($t: TierCode!) { changePlan(input: { tier: $t, interval: MONTHLY }) {
         plan { tier { code } status currentPeriodStart currentPeriodEnd } purchase { id status credits amountCents } balance { available } userErrors { code } } }`,
      { t: this.tier },
      { sub: a.id },
    );
    const out = d.changePlan;
    const target = tierOf(m.catalog, this.tier);
    const what = `${this} from ${a.tier} ${a.status}`;
    const kind = a.tier === 'FREE' || a.status !== 'ACTIVE' ? 'new period' : a.tier === this.tier ? 'same tier' : target.rank > tierOf(m.catalog, a.tier).rank ? 'upgrade' : 'downgrade';
    note(`changePlan: ${kind}${a.declines > 0 && kind !== 'same tier' && kind !== 'downgrade' ? ' (declined)' : ''}`);
    if (a.tier === 'FREE' || a.status !== 'ACTIVE') {
      // A new period at full price, starting now, with its first month's allowance.
      if (a.declines > 0) {
        // Declined: the attempt is kept as a FAILED purchase (as a declined pack is), nothing else
        // changes — except that an unpaid (PAST_DUE) plan was replaced at the ask (docs/BILLING.md):
        // it ended then, whatever the new plan's first payment does.
        a.declines--;
        if (a.tier !== 'FREE' && a.status === 'PAST_DUE') {
          note('changePlan: replaces an unpaid plan, declined');
          endPlan(a);
        }
        expectEq(`${what} userErrors`, codes(out.userErrors), ['PAYMENT_FAILED']);
        expectEq(`${what} purchase`, out.purchase && { status: out.purchase.status, credits: out.purchase.credits, amountCents: out.purchase.amountCents },
          { status: 'FAILED', credits: target.monthlyCredits, amountCents: target.monthlyPriceCents });
        a.purchases.push({
          id: out.purchase!.id, kind: 'PLAN', status: 'FAILED', credits: target.monthlyCredits, amountCents: target.monthlyPriceCents, tier: target.code,
          completedHour: m.hour, seq: ++m.seq, refundRequested: false, periodStart: null,
        });
      } else {
        expectEq(`${what} userErrors`, codes(out.userErrors), []);
        const start = Date.parse(out.plan!.currentPeriodStart!);
        const plan = { anchorHour: m.hour, anchorAt: start, periodStart: start, periodEnd: addMonths(start, 1) };
        expectEq(`${what} period end`, out.plan!.currentPeriodEnd, new Date(plan.periodEnd).toISOString());
        const p: MPurchase = {
          id: out.purchase!.id, kind: 'PLAN', status: 'COMPLETED', credits: target.monthlyCredits, amountCents: target.monthlyPriceCents, tier: target.code,
          completedHour: m.hour, seq: ++m.seq, refundRequested: false, periodStart: start,
        };
        a.purchases.push(p);
        Object.assign(a, { tier: target.code, status: 'ACTIVE', cancelAtPeriodEnd: false, scheduledTier: null, plan });
        if (target.monthlyCredits > 0) addAllowance(m, a, plan, target, target.monthlyCredits, plan.periodEnd, p);
        expectEq(`${what} balance`, out.balance?.available, available(a));
      }
    } else if (a.tier === this.tier) {
      if (a.cancelAtPeriodEnd || a.scheduledTier) {
        expectEq(`${what} userErrors`, codes(out.userErrors), []);
        a.cancelAtPeriodEnd = false;
        a.scheduledTier = null;
      } else {
        expectEq(`${what} userErrors`, codes(out.userErrors), ['INVALID_STATE']);
      }
    } else if (target.rank > tierOf(m.catalog, a.tier).rank) {
      // Upgrade now. Charge: price difference × share of the period left, rounded up; credits:
      // allowance difference × share of the month left, rounded down. The system's clock is a
      // little past the model's whole hours, so "left" is a little under the model's count: by
      // how much, the system's clock read before and after the request bounds. A charge just
      // above a whole cent at the model's hour can be that cent at the system's instant (seed
      // 1488479082: 6,580 in whole hours, 6,579 at the system's).
      const answeredAt = r.app.server.services.clock.now().getTime();
      const plan = a.plan!;
      const current = tierOf(m.catalog, a.tier);
      const left = hourOf(plan, plan.periodEnd) - m.hour;
      const total = hourOf(plan, plan.periodEnd) - hourOf(plan, plan.periodStart);
      const priceDiff = target.monthlyPriceCents - current.monthlyPriceCents;
      const creditDiff = target.monthlyCredits - current.monthlyCredits;
      let amount = Math.max(0, Math.ceil((priceDiff * left) / total));
      let credits = Math.max(0, floorJustBelow(creditDiff * left, total));
      if (out.plan?.currentPeriodStart && out.plan.currentPeriodEnd) {
        // Between the readings: what the share left gives at each end (an upgrade keeps the period).
        const start = Date.parse(out.plan.currentPeriodStart);
        const end = Date.parse(out.plan.currentPeriodEnd);
        const share = (t: number) => Math.max(0, end - t) / (end - start);
        const charged = out.purchase?.amountCents ?? -1;
        const given = out.purchase?.credits ?? -1;
        const [amountLo, amountHi] = [Math.ceil(priceDiff * share(answeredAt) - 1e-9), Math.ceil(priceDiff * share(sentAt) + 1e-9)].map((x) => Math.max(0, x));
        const [creditsLo, creditsHi] = [Math.floor(creditDiff * share(answeredAt) - 1e-9), Math.floor(creditDiff * share(sentAt) + 1e-9)].map((x) => Math.max(0, x));
        if (charged >= amountLo && charged <= amountHi) amount = charged;
        if (given >= creditsLo && given <= creditsHi) credits = given;
      }
      if (amount > 0 && a.declines > 0) {
        // Declined: kept as a FAILED purchase that charged nothing.
        a.declines--;
        expectEq(`${what} userErrors`, codes(out.userErrors), ['PAYMENT_FAILED']);
        expectEq(`${what} upgrade purchase`, out.purchase && { status: out.purchase.status, credits: out.purchase.credits, amountCents: out.purchase.amountCents },
          { status: 'FAILED', credits, amountCents: 0 });
        a.purchases.push({
          id: out.purchase!.id, kind: 'PLAN', status: 'FAILED', credits, amountCents: 0, tier: target.code,
          completedHour: m.hour, seq: ++m.seq, refundRequested: false, periodStart: null,
        });
      } else {
        expectEq(`${what} userErrors`, codes(out.userErrors), []);
        expectEq(`${what} upgrade purchase`, out.purchase && { credits: out.purchase.credits, amountCents: out.purchase.amountCents }, { credits, amountCents: amount });
        const p: MPurchase = {
          id: out.purchase!.id, kind: 'PLAN', status: 'COMPLETED', credits, amountCents: amount, tier: target.code,
          completedHour: m.hour, seq: ++m.seq, refundRequested: false, periodStart: plan.periodStart + 0.5, // bought inside the period
        };
        a.purchases.push(p);
        Object.assign(a, { tier: target.code, scheduledTier: null, cancelAtPeriodEnd: false });
        if (credits > 0) addAllowance(m, a, plan, target, credits, plan.periodEnd, p);
        expectEq(`${what} balance`, out.balance?.available, available(a));
      }
    } else {
      // A lower tier: from the next period.
      expectEq(`${what} userErrors`, codes(out.userErrors), []);
      a.scheduledTier = target.code;
      a.cancelAtPeriodEnd = false;
    }
    await checkAccount(m, r, a, this.toString());
  }
}

class CancelPlan extends Cmd {
  readonly name = 'cancelPlan';
  constructor(readonly acct: number, readonly evenIfFree = false) {
    super();
  }
  check(m: Readonly<Model>) {
    return this.evenIfFree || m.accounts[this.acct].tier !== 'FREE';
  }
  toString() {
    return `CancelPlan(${this.acct}${this.evenIfFree ? ', even if FREE' : ''})`;
  }
  protected async act(m: Model, r: Real) {
    const a = m.accounts[this.acct];
    const d = await r.data<{ cancelPlan: { userErrors: { code: string }[] } }>(`mutation { cancelPlan { userErrors { code } } }`, undefined, { sub: a.id });
    const got = codes(d.cancelPlan.userErrors);
    note(`cancelPlan: ${a.tier === 'FREE' ? 'FREE' : a.status}`);
    if (a.tier !== 'FREE' && a.status === 'PAST_DUE') {
      expectEq(`${this} userErrors`, got, []);
      endPlan(a);
    } else if (a.tier === 'FREE' || a.status !== 'ACTIVE') {
      expectEq(`${this} userErrors`, got, ['INVALID_STATE']);
    } else {
      expectEq(`${this} userErrors`, got, []);
      a.cancelAtPeriodEnd = true;
      a.scheduledTier = null;
    }
    await checkAccount(m, r, a, this.toString());
  }
}

// ---------------------------------------------------------------- the mix

/**
 * Clock steps in whole hours: around the 24-hour refund window, days, weeks, and almost a
 * month (never more than 27 days, so one step crosses at most one period end of an account).
 */
export const CLOCK_STEPS = [1, 3, 12, 23, 24, 25, 48, 24 * 7, 24 * 20, 24 * 27];

// ---------------------------------------------------------------- auto top-up

interface AutoTopUpAnswer {
  autoTopUp: { enabled: boolean; packCode: string; belowCredits: number; maxPerMonth: number; purchasesThisMonth: number; failedAttempts: number } | null;
  userErrors: { code: string }[];
}

/** Turns auto top-up on (again) with a pack, a level and a monthly cap. */
class SetAutoTopUp extends Cmd {
  readonly name = 'setAutoTopUp';
  constructor(readonly acct: number, readonly pack: number, readonly below: number, readonly max: number) {
    super();
  }
  toString() {
    return `SetAutoTopUp(${this.acct}, #${this.pack}, below ${this.below}, ${this.max} a month)`;
  }
  protected async act(m: Model, r: Real) {
    const a = m.accounts[this.acct];
    const pack = m.catalog.packs[this.pack % m.catalog.packs.length];
    const d = await r.data<{ setAutoTopUp: AutoTopUpAnswer }>(
      `mutation($p: String!, $b: Int!, $x: Int!) { setAutoTopUp(input: { packCode: $p, belowCredits: $b, maxPerMonth: $x }) {
         autoTopUp { enabled packCode belowCredits maxPerMonth purchasesThisMonth failedAttempts } userErrors { code } } }`,
      { p: pack.code, b: this.below, x: this.max },
      { sub: a.id },
    );
    a.autoTopUp = { enabled: true, pack, below: this.below, maxPerMonth: this.max, failed: 0, bought: a.autoTopUp?.bought ?? {}, asked: false };
    note(`setAutoTopUp${available(a) < this.below ? ' (already below: buys nothing yet)' : ''}`);
    expectEq(`${this} answer`, d.setAutoTopUp, {
      autoTopUp: { enabled: true, packCode: pack.code, belowCredits: this.below, maxPerMonth: this.max, purchasesThisMonth: boughtThisMonth(m, a.autoTopUp), failedAttempts: 0 },
      userErrors: [],
    });
    await checkAccount(m, r, a, this.toString());
  }
}

class DisableAutoTopUp extends Cmd {
  readonly name = 'disableAutoTopUp';
  constructor(readonly acct: number) {
    super();
  }
  toString() {
    return `DisableAutoTopUp(${this.acct})`;
  }
  protected async act(m: Model, r: Real) {
    const a = m.accounts[this.acct];
    const d = await r.data<{ disableAutoTopUp: AutoTopUpAnswer }>(
      `mutation { disableAutoTopUp { autoTopUp { enabled packCode belowCredits maxPerMonth purchasesThisMonth failedAttempts } userErrors { code } } }`,
      undefined,
      { sub: a.id },
    );
    const t = a.autoTopUp;
    if (t) t.enabled = false;
    expectEq(`${this} answer`, d.disableAutoTopUp, {
      autoTopUp: t && { enabled: false, packCode: t.pack.code, belowCredits: t.below, maxPerMonth: t.maxPerMonth, purchasesThisMonth: boughtThisMonth(m, t), failedAttempts: t.failed },
      userErrors: [],
    });
    await checkAccount(m, r, a, this.toString());
  }
}

export function commandArbs(): fc.Arbitrary<fc.AsyncCommand<Model, Real>>[] {
  const acct = fc.integer({ min: 0, max: ACCOUNTS - 1 });
  const pick = fc.nat({ max: 1000 });
  const bool = (trueWeight: number) => fc.oneof({ weight: trueWeight, arbitrary: fc.constant(true) }, { weight: 10 - trueWeight, arbitrary: fc.constant(false) });
  const w = (weight: number, arbitrary: fc.Arbitrary<fc.AsyncCommand<Model, Real>>) => ({ weight, arbitrary });
  return [
    fc.oneof(
      w(8, fc.tuple(acct, settingsArb).map(([a, s]) => new StartGeneration(a, s))),
      w(1, fc.tuple(acct, settingsArb).map(([a, s]) => new Quote(a, s))),
      w(2, fc.tuple(acct, settingsArb, pick, bool(2)).map(([a, s, q, other]) => new StartGeneration(a, s, q, other))),
      w(4, fc.tuple(acct, fc.nat({ max: 2 })).map(([a, p]) => new BuyPack(a, p))),
      w(4, fc.tuple(fc.constantFrom<Ending>('complete', 'fail', 'fail', 'hold'), bool(1)).map(([e, any]) => new ClaimJob(e, any))),
      w(2, fc.tuple(pick, fc.constantFrom('complete' as const, 'fail' as const)).map(([p, e]) => new FinishRunning(p, e))),
      w(1, pick.map((p) => new WrongWorker(p))),
      w(2, fc.tuple(pick, fc.integer({ min: 0, max: 100 })).map(([p, n]) => new ReportProgress(p, n))),
      w(1, pick.map((p) => new AcknowledgeCancel(p))),
      // Mostly the account's own jobs and purchases; sometimes any account's, or an unknown id.
      w(4, fc.tuple(acct, pick, bool(2), bool(6)).map(([a, p, f, q]) => new CancelGeneration(a, p, f, q))),
      w(6, fc.tuple(acct, pick, bool(2)).map(([a, p, f]) => new RequestRefund(a, p, f))),
      w(4, fc.constantFrom(...CLOCK_STEPS).map((h) => new AdvanceClock(h))),
      w(3, fc.tuple(acct, fc.constantFrom('refund window' as const, 'period end' as const), fc.constantFrom(-1 as const, 0 as const, 1 as const)).map(([a, e, o]) => new AdvanceToEdge(a, e, o))),
      w(2, fc.tuple(acct, fc.oneof(fc.integer({ min: -60, max: -1 }), fc.integer({ min: 1, max: 40 }))).map(([a, n]) => new AdjustCredits(a, n))),
      w(2, fc.tuple(acct, fc.integer({ min: 0, max: 8 })).map(([a, n]) => new AdjustCredits(a, n, true))),
      w(3, fc.tuple(acct, fc.constantFrom<TierCode>('CREATOR', 'CREATOR', 'PRO', 'MAX')).map(([a, t]) => new ChangePlan(a, t))),
      w(2, fc.tuple(acct, bool(2)).map(([a, f]) => new CancelPlan(a, f))),
      w(1, acct.map((a) => new CardDeclines(a))),
      w(2, fc.tuple(acct, fc.nat({ max: 2 }), fc.constantFrom(5, 10, 20, 40, 80), fc.integer({ min: 1, max: 3 })).map(([a, p, b, x]) => new SetAutoTopUp(a, p, b, x))),
      w(1, acct.map((a) => new DisableAutoTopUp(a))),
      w(1, fc.constant(new ReadAll())),
    ),
  ];
}
