/**
 * The real system as the model-based test drives it: the GraphQL API over HTTP (TestApp.raw),
 * as users, an admin and GPU workers, and the comparison of an account's whole visible state
 * (balance, lots, plan, jobs, purchases) with the model.
 */
import { Role } from '../../../src/common/auth/role.enum';
import type { GqlResult, TestApp } from '../../helpers/test-app';
import { available, boughtThisMonth, landTopUps, spendingOrder, type Catalog, type ClassRule, type CostClass, type MAccount, type Model, type QueueClass, type TierCode } from './model';

export class Real {
  readonly admin = { sub: 'model-admin', role: Role.ADMIN };
  readonly worker: { sub: string; role: Role };
  readonly otherWorker: { sub: string; role: Role };

  constructor(readonly app: TestApp, readonly tag: string) {
    this.worker = { sub: `gpu-${tag}`, role: Role.WORKER };
    this.otherWorker = { sub: `gpu-other-${tag}`, role: Role.WORKER };
  }

  raw<T>(query: string, variables: Record<string, unknown> | undefined, as: { sub: string; role?: Role }): Promise<GqlResult<T>> {
    return this.app.raw<T>(query, variables, as);
  }

  /** The data of an operation that must not fail with GraphQL errors. */
  async data<T>(query: string, variables: Record<string, unknown> | undefined, as: { sub: string; role?: Role }): Promise<T> {
    const r = await this.raw<T>(query, variables, as);
    if (r.errors?.length || !r.data) throw new Error(`GraphQL errors (HTTP ${r.status}): ${JSON.stringify(r.errors)}\n  in ${query.replace(/\s+/g, ' ').slice(0, 200)}`);
    return r.data;
  }
}

export const ME = `query {
  me {
    balance { available lots { source granted remaining expiresAt } }
    plan { tier { code } status cancelAtPeriodEnd currentPeriodStart currentPeriodEnd scheduledTier { code } }
    jobs(first: 100) { totalCount edges { node { id status refunded credits queueClass } } }
    purchases(first: 100) { totalCount edges { node { id kind status credits amountCents tier automatic } } }
    autoTopUp { enabled packCode belowCredits maxPerMonth purchasesThisMonth failedAttempts }
  }
}`;

interface MeData {
  me: {
    balance: { available: number; lots: { source: string; granted: number; remaining: number; expiresAt: string | null }[] };
    plan: { tier: { code: TierCode }; status: string; cancelAtPeriodEnd: boolean; currentPeriodStart: string | null; currentPeriodEnd: string | null; scheduledTier: { code: TierCode } | null };
    jobs: { totalCount: number; edges: { node: { id: string; status: string; refunded: boolean; credits: number; queueClass: QueueClass } }[] };
    purchases: {
      totalCount: number;
      edges: { node: { id: string; kind: string; status: string; credits: number; amountCents: number; tier: TierCode | null; automatic: boolean } }[];
    };
    autoTopUp: { enabled: boolean; packCode: string; belowCredits: number; maxPerMonth: number; purchasesThisMonth: number; failedAttempts: number } | null;
  };
}

/** The system clock's UTC month (YYYY-MM). */
export function monthOf(real: Real): string {
  return real.app.server.services.clock.now().toISOString().slice(0, 7);
}

/**
 * Waits until no account of the model has an auto top-up asked for or in flight (the system
 * makes them after the commits that asked, on its own), then makes them in the model.
 */
async function topUpsSettled(m: Model, real: Real): Promise<void> {
  const ids = m.accounts.map((a) => a.id);
  const until = Date.now() + 15_000;
  for (;;) {
    const { rows } = await real.app.audit.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM auto_top_ups WHERE account_id = ANY($1) AND (requested_at IS NOT NULL OR purchase_id IS NOT NULL)', [ids]);
    if (rows[0].n === 0) break;
    if (Date.now() > until) throw new Error(`auto top-ups of ${ids.join(', ')} still asked for or in flight after 15 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
  landTopUps(m);
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * Reads the account through the API and compares it with the model: available balance, the
 * lots in spending order, the plan, every job (status, refunded, price, queue) and every
 * purchase (kind, status, credits, amount, tier). Purchases the system made on its own
 * (renewals) get their ids here, in the order they were made.
 */
export async function checkAccount(m: Model, real: Real, a: MAccount, after: string): Promise<void> {
  await topUpsSettled(m, real);
  const { me } = await real.data<MeData>(ME, undefined, { sub: a.id });
  const seen = me.purchases.edges.map((e) => e.node);
  const unknown = seen.filter((p) => !a.purchases.some((q) => q.id === p.id)).reverse(); // oldest first
  const unnamed = a.purchases.filter((p) => p.id === null);
  if (unknown.length === unnamed.length) unknown.forEach((p, i) => (unnamed[i].id = p.id));

  const actual = {
    available: me.balance.available,
    lots: me.balance.lots.map((l) => ({ source: l.source, granted: l.granted, remaining: l.remaining, expiresAt: l.expiresAt })),
    plan: {
      tier: me.plan.tier.code,
      status: me.plan.status,
      cancelAtPeriodEnd: me.plan.cancelAtPeriodEnd,
      scheduledTier: me.plan.scheduledTier?.code ?? null,
      currentPeriodStart: me.plan.currentPeriodStart,
      currentPeriodEnd: me.plan.currentPeriodEnd,
    },
    jobs: me.jobs.edges.map((e) => e.node).sort((x, y) => x.id.localeCompare(y.id)),
    purchases: seen.map((p) => ({ ...p })).sort((x, y) => x.id.localeCompare(y.id)),
    autoTopUp: me.autoTopUp,
  };
  const expected = {
    available: available(a),
    lots: spendingOrder(a).map((l) => ({ source: l.source, granted: l.granted, remaining: l.remaining, expiresAt: iso(l.expiresAt) })),
    plan: {
      tier: a.tier,
      status: a.status,
      cancelAtPeriodEnd: a.cancelAtPeriodEnd,
      scheduledTier: a.scheduledTier,
      currentPeriodStart: iso(a.plan?.periodStart ?? null),
      currentPeriodEnd: iso(a.plan?.periodEnd ?? null),
    },
    jobs: a.jobs
      .map((j) => ({ id: j.id, status: j.status, refunded: j.refunded, credits: j.credits, queueClass: j.queueClass }))
      .sort((x, y) => x.id.localeCompare(y.id)),
    purchases: a.purchases
      .map((p) => ({ id: p.id ?? '(unknown)', kind: p.kind, status: p.status, credits: p.credits, amountCents: p.amountCents, tier: p.tier, automatic: p.automatic ?? false }))
      .sort((x, y) => x.id.localeCompare(y.id)),
    autoTopUp: a.autoTopUp && {
      enabled: a.autoTopUp.enabled, packCode: a.autoTopUp.pack.code, belowCredits: a.autoTopUp.below, maxPerMonth: a.autoTopUp.maxPerMonth,
      purchasesThisMonth: boughtThisMonth({ ...m, month: monthOf(real) }, a.autoTopUp), failedAttempts: a.autoTopUp.failed,
    },
  };
  try {
    expect(actual).toEqual(expected);
  } catch (e) {
    throw new Error(`account ${a.id} disagrees with the model after ${after} (model hour ${m.hour}):\n${(e as Error).message}`);
  }
}

export async function checkAll(m: Model, real: Real, after: string): Promise<void> {
  for (const a of m.accounts) await checkAccount(m, real, a, after);
}

/** The catalog and the current price book, read from the API once. */
export async function loadCatalog(app: TestApp): Promise<Catalog> {
  const real = new Real(app, 'catalog');
  const d = await real.data<{
    tiers: { code: TierCode; monthlyCredits: number; signupCredits: number; monthlyPriceCents: number; queueClass: QueueClass; features: string[]; maxResolution: number; rolloverMonths: number }[];
    creditPacks: { code: string; credits: number; priceCents: number }[];
    models: { code: string; premium: boolean }[];
    priceBook: { version: number; largeSizePixels: number; classes: (ClassRule & { costClass: CostClass })[] };
  }>(
    `query { tiers { code monthlyCredits signupCredits monthlyPriceCents queueClass features maxResolution rolloverMonths }
             creditPacks { code credits priceCents } models { code premium }
             priceBook { version largeSizePixels classes { costClass base perExtraSecond cap largeSize premiumModel premiumQuality } } }`,
    undefined,
    real.admin,
  );
  const classes = {} as Record<CostClass, ClassRule>;
  for (const { costClass, ...rule } of d.priceBook.classes) classes[costClass] = rule;
  return {
    // `tiers` lists them cheapest first: that is their rank.
    tiers: d.tiers.map((t, rank) => ({ ...t, rank })),
    packs: d.creditPacks,
    premiumModels: new Set(d.models.filter((x) => x.premium).map((x) => x.code)),
    largeSizePixels: d.priceBook.largeSizePixels,
    classes,
  };
}

/**
 * Leaves nothing of a run behind that could reach the next one (the job queue and the clock
 * are shared): queued jobs canceled, running ones completed, paid plans canceled. Reads the
 * system's own state, so it works after a divergence too.
 */
export async function cleanup(real: Real, accountIds: string[]): Promise<void> {
  for (const sub of accountIds) {
    const r = await real.raw<MeData>(ME, undefined, { sub });
    const me = r.data?.me;
    if (!me) continue;
    for (const { node: j } of me.jobs.edges) {
      if (j.status === 'QUEUED') await real.raw(`mutation($id: ID!) { cancelGeneration(jobId: $id) { userErrors { code } } }`, { id: j.id }, { sub });
      if (j.status === 'RUNNING') {
        for (const w of [real.worker, real.otherWorker]) {
          await real.raw(`mutation($id: ID!) { completeGenerationJob(jobId: $id, resultUrls: []) { status } }`, { id: j.id }, w);
        }
      }
    }
    if (me.plan.tier.code !== 'FREE' && me.plan.status !== 'CANCELED') await real.raw(`mutation { cancelPlan { userErrors { code } } }`, undefined, { sub });
    // Nothing bought for the accounts of a finished run when later runs move the clock.
    await real.raw(`mutation { disableAutoTopUp { userErrors { code } } }`, undefined, { sub });
  }
}
