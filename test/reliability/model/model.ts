/**
 * The in-memory model of the credits economy that the model-based test (model.test.ts) holds
 * the real system to. It is written from the contract (../shared/API.md, docs/GENERATIONS.md,
 * docs/BILLING.md), not from the code: lots spent soonest-expiry first then oldest, refunds back
 * to the lots they came from (and withdrawn again at once when that lot has closed), the refund
 * policy, monthly plans with their allowance, renewals, upgrades and cancellations.
 *
 * Time: the model counts whole hours since the run began (`hour`). The system's clock is that
 * plus the real time the run has taken (always positive, and far below an hour), so a rule
 * "at or after T" in the system holds in the model when the whole hours since the event are
 * at least T's hours; "within 24 hours" holds while fewer than 24 whole hours have passed.
 * Absolute instants (period ends, lot expiries) are kept too, to compare with the API exactly.
 */

export const HOUR = 3_600_000;

export type TierCode = 'FREE' | 'CREATOR' | 'PRO' | 'MAX';
export type QueueClass = 'STANDARD' | 'PRIORITY' | 'FAST' | 'INSTANT';
export type JobStatus = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELED';
export type PurchaseStatus = 'PENDING' | 'COMPLETED' | 'FAILED' | 'REFUNDED' | 'PARTIALLY_REFUNDED';
export type LotSource = 'SIGNUP_BONUS' | 'MONTHLY_ALLOWANCE' | 'PACK_PURCHASE' | 'ADJUSTMENT';
export type CostClass = 'IMAGE_STANDARD' | 'IMAGE_HIGH' | 'IMAGE_ULTRA' | 'VIDEO_SHORT' | 'VIDEO_STANDARD' | 'VIDEO_PREMIUM';

/** Claim order (API.md): INSTANT > FAST > PRIORITY > STANDARD. */
export const QUEUE_RANK: Record<QueueClass, number> = { INSTANT: 0, FAST: 1, PRIORITY: 2, STANDARD: 3 };

export interface TierInfo {
  code: TierCode;
  rank: number;
  monthlyCredits: number;
  signupCredits: number;
  monthlyPriceCents: number;
  queueClass: QueueClass;
  features: string[];
  maxResolution: number;
  /** Months a month's unused allowance is kept after its month. */
  rolloverMonths: number;
}

export interface ClassRule {
  base: number;
  perExtraSecond: number;
  cap: number | null;
  largeSize: number;
  premiumModel: number;
  premiumQuality: number;
}

/** The catalog and price book as the API publishes them (read once per test file). */
export interface Catalog {
  tiers: TierInfo[];
  packs: { code: string; credits: number; priceCents: number }[];
  premiumModels: Set<string>;
  largeSizePixels: number;
  classes: Record<CostClass, ClassRule>;
}

export interface Settings {
  type: 'IMAGE' | 'VIDEO';
  model: string;
  width: number;
  height: number;
  imageQuality?: 'STANDARD' | 'HIGH' | 'ULTRA';
  count?: number;
  durationSeconds?: number;
  videoQuality?: 'STANDARD' | 'PREMIUM';
}

export interface MLot {
  /** Creation order inside the run (lots of one account are created by separate requests). */
  seq: number;
  source: LotSource;
  granted: number;
  remaining: number;
  /** Absolute expiry (ms) and the model hour at which it is due; null: never expires. */
  expiresAt: number | null;
  expiresHour: number | null;
  /** The purchase that granted it (a refund of that purchase withdraws what it still holds). */
  purchase: MPurchase | null;
}

export interface MJob {
  id: string;
  account: string;
  credits: number;
  status: JobStatus;
  refunded: boolean;
  /** Credits its refund gave back (all of them, or a stopped job's unrendered share). */
  returned: number;
  /** 0..100 as the worker last reported it. */
  progress: number;
  cancelRequested: boolean;
  queueClass: QueueClass;
  createdAt: string;
  seq: number;
  /** Which lots the debit took from, and how much from each. */
  takes: { lot: MLot; amount: number }[];
}

export interface MPurchase {
  /** null until the test learns the id of a purchase the system made by itself (a renewal). */
  id: string | null;
  kind: 'CREDIT_PACK' | 'PLAN';
  status: PurchaseStatus;
  credits: number;
  amountCents: number;
  tier: TierCode | null;
  /** Model hour of completion (refund window), and position in the account's history. */
  completedHour: number;
  seq: number;
  refundRequested: boolean;
  /** PLAN: the start of the period it paid for (an upgrade: just after its period's start). */
  periodStart: number | null;
  /** Bought by auto top-up. */
  automatic?: boolean;
}

/** Auto top-up as the account set it, and where it stands (API.md, docs/BILLING.md). */
export interface MAutoTopUp {
  enabled: boolean;
  pack: { code: string; credits: number; priceCents: number };
  below: number;
  maxPerMonth: number;
  failed: number;
  /** Automatic purchases that did not fail, by UTC month (YYYY-MM). */
  bought: Record<string, number>;
  /** A fall below the level asked for a purchase, not made yet (the system makes it after commit). */
  asked: boolean;
}

export interface MPlan {
  /** Model hour and absolute instant of the plan's start: converts instants to model hours. */
  anchorHour: number;
  anchorAt: number;
  periodStart: number;
  periodEnd: number;
}

export interface MAccount {
  id: string;
  tier: TierCode;
  status: 'ACTIVE' | 'CANCELED' | 'PAST_DUE';
  cancelAtPeriodEnd: boolean;
  scheduledTier: TierCode | null;
  plan: MPlan | null;
  lots: MLot[];
  jobs: MJob[];
  purchases: MPurchase[];
  /** Charges of this account that the payment provider will decline next. */
  declines: number;
  /** Prices held by `quote` (10 minutes: any clock step ends them). */
  /** Quotes asked for; `started`: a job was started from it (the retention sweep keeps it with the job). */
  quotes: { id: string; settings: Settings; credits: number; hour: number; started?: boolean }[];
  autoTopUp: MAutoTopUp | null;
}

export interface Model {
  catalog: Catalog;
  hour: number;
  seq: number;
  accounts: MAccount[];
  /** Notable things that happened (coverage counts). */
  notes: string[];
  /** The system clock's UTC month (YYYY-MM), as the commands read it: auto top-up's monthly cap. */
  month: string;
}

export function newModel(catalog: Catalog, ids: string[]): Model {
  const free = tierOf(catalog, 'FREE');
  const model: Model = { catalog, hour: 0, seq: 0, accounts: [], notes: [], month: '' };
  for (const id of ids) {
    const a: MAccount = {
      id, tier: 'FREE', status: 'ACTIVE', cancelAtPeriodEnd: false, scheduledTier: null, plan: null, lots: [], jobs: [], purchases: [], declines: 0, quotes: [], autoTopUp: null,
    };
    if (free.signupCredits > 0) addLot(model, a, 'SIGNUP_BONUS', free.signupCredits, null, null, null);
    model.accounts.push(a);
  }
  return model;
}

export function tierOf(c: Catalog, code: TierCode): TierInfo {
  const t = c.tiers.find((x) => x.code === code);
  if (!t) throw new Error(`no tier ${code}`);
  return t;
}

export function available(a: MAccount): number {
  return a.lots.reduce((s, l) => s + l.remaining, 0);
}

/** Lots holding credits, in spending order: soonest expiry first (never last), then oldest. */
export function spendingOrder(a: MAccount): MLot[] {
  return a.lots
    .filter((l) => l.remaining > 0)
    .sort((x, y) => (x.expiresAt ?? Infinity) - (y.expiresAt ?? Infinity) || x.seq - y.seq);
}

export function addLot(m: Model, a: MAccount, source: LotSource, amount: number, expiresAt: number | null, expiresHour: number | null, purchase: MPurchase | null): MLot {
  const lot: MLot = { seq: ++m.seq, source, granted: amount, remaining: amount, expiresAt, expiresHour, purchase };
  a.lots.push(lot);
  return lot;
}

/** Takes `amount` in spending order; the caller has checked the balance covers it. */
export function take(a: MAccount, amount: number): { lot: MLot; amount: number }[] {
  const takes: { lot: MLot; amount: number }[] = [];
  let left = amount;
  for (const lot of spendingOrder(a)) {
    if (left === 0) break;
    const t = Math.min(lot.remaining, left);
    lot.remaining -= t;
    left -= t;
    takes.push({ lot, amount: t });
  }
  if (left !== 0) throw new Error('model: took more than the balance');
  return takes;
}

/** A lot whose credits may no longer be spent: expired, or its purchase refunded. */
function closed(m: Model, lot: MLot): boolean {
  const p = lot.purchase;
  if (p && (p.status === 'REFUNDED' || p.status === 'PARTIALLY_REFUNDED')) return true;
  return lot.expiresHour !== null && lot.expiresHour <= m.hour;
}

/** A job's credits back to the lots they came from; what lands in a closed lot goes again. */
/**
 * Gives the job's credits back to the lots they came from — or only `part` of them (a stopped
 * job's unrendered share, BILLING.md), to the lots taken last first.
 */
export function refundJob(m: Model, job: MJob, part = job.credits): void {
  if (part === 0) return;
  job.refunded = true;
  job.returned = part;
  let left = part;
  for (const t of [...job.takes].reverse()) {
    const back = Math.min(t.amount, left);
    if (back === 0) break;
    left -= back;
    t.lot.remaining += back;
    if (closed(m, t.lot)) {
      t.lot.remaining = 0;
      m.notes.push('job refund into a closed lot');
    }
  }
}

/** What a job stopped while RUNNING gives back: floor(credits × (100 − progress) / 100). */
export const unrenderedShare = (job: MJob): number => Math.floor((job.credits * (100 - job.progress)) / 100);

// ---- prices and tier gates, from the published rules and the API's price book ----

export function costClassOf(c: Catalog, s: Settings): CostClass {
  if (s.type === 'IMAGE') return s.imageQuality === 'ULTRA' ? 'IMAGE_ULTRA' : s.imageQuality === 'HIGH' ? 'IMAGE_HIGH' : 'IMAGE_STANDARD';
  const d = s.durationSeconds!;
  if (d > 10 || s.videoQuality === 'PREMIUM' || c.premiumModels.has(s.model)) return 'VIDEO_PREMIUM';
  return d > 5 ? 'VIDEO_STANDARD' : 'VIDEO_SHORT';
}

/** Base + seconds past the class's first + surcharges, clamped to the cap; images × count. */
export function priceOf(c: Catalog, s: Settings): number {
  const cls = costClassOf(c, s);
  const r = c.classes[cls];
  let one = r.base;
  if (s.type === 'VIDEO') {
    const first = cls === 'VIDEO_STANDARD' ? 6 : 1;
    one += Math.max(0, s.durationSeconds! - first) * r.perExtraSecond;
    if (s.videoQuality === 'PREMIUM') one += r.premiumQuality;
  }
  if (s.width * s.height > c.largeSizePixels) one += r.largeSize;
  if (c.premiumModels.has(s.model)) one += r.premiumModel;
  if (r.cap !== null) one = Math.min(one, r.cap);
  return one * (s.type === 'IMAGE' ? (s.count ?? 1) : 1);
}

/** The tier's features and resolution allow these settings. */
export function tierAllows(c: Catalog, t: TierInfo, s: Settings): boolean {
  const cls = costClassOf(c, s);
  const needs: string[] = [];
  if (cls === 'IMAGE_ULTRA') needs.push('ULTRA_IMAGES');
  if (cls === 'VIDEO_STANDARD') needs.push('STANDARD_VIDEOS');
  if (cls === 'VIDEO_PREMIUM') needs.push('PREMIUM_VIDEOS');
  if (c.premiumModels.has(s.model)) needs.push('PREMIUM_MODELS');
  return needs.every((f) => t.features.includes(f)) && Math.max(s.width, s.height) <= t.maxResolution;
}

/** The tier whose features and queue apply: a PAST_DUE plan gets FREE's until it is paid. */
export function effectiveTier(m: Model, a: MAccount): TierInfo {
  return tierOf(m.catalog, a.status === 'PAST_DUE' ? 'FREE' : a.tier);
}

// ---- calendar ----

/** `at` plus `n` calendar months (UTC), on the same day or the month's last day. */
export function addMonths(at: number, n: number): number {
  const d = new Date(at);
  const y = d.getUTCFullYear();
  const mo = d.getUTCMonth() + n;
  const last = new Date(Date.UTC(y, mo + 1, 0)).getUTCDate();
  return Date.UTC(y, mo, Math.min(d.getUTCDate(), last), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds());
}

/** The model hour at which an instant of the plan's calendar falls (a whole number). */
/**
 * When the allowance of the month ending at `end` expires (BILLING.md, rollover): `rollover`
 * months after its month, on the plan's anchor day (Jan 31 → Feb 28 → Mar 31).
 */
export function allowanceExpiry(plan: MPlan, end: number, rollover: number): number {
  let k = 1;
  while (addMonths(plan.anchorAt, k) < end) k++;
  return addMonths(plan.anchorAt, k + rollover);
}

/** Adds the allowance lot of the month ending at `end` of a plan on `tier`. */
export function addAllowance(m: Model, a: MAccount, plan: MPlan, tier: TierInfo, credits: number, end: number, purchase: MPurchase | null): void {
  const expires = allowanceExpiry(plan, end, tier.rolloverMonths);
  addLot(m, a, 'MONTHLY_ALLOWANCE', credits, expires, hourOf(plan, expires), purchase);
}

export function hourOf(plan: MPlan, at: number): number {
  const h = plan.anchorHour + (at - plan.anchorAt) / HOUR;
  if (!Number.isInteger(h)) throw new Error(`model: ${new Date(at).toISOString()} is not a whole hour from the plan's start`);
  return h;
}

/** floor(n / d) for a quantity that the system computes from slightly less than n / d. */
export function floorJustBelow(n: number, d: number): number {
  return n % d === 0 ? n / d - 1 : Math.floor(n / d);
}

// ---- the plan calendar moving on: renewals, ends, expiries ----

/** What the system does when the clock moves to `m.hour`: period ends, then lot expiries. */
export function timePasses(m: Model): void {
  for (const a of m.accounts) {
    while (a.status === 'ACTIVE' && a.plan && hourOf(a.plan, a.plan.periodEnd) <= m.hour) {
      const plan = a.plan;
      if (a.cancelAtPeriodEnd) {
        m.notes.push('plan ended at period end');
        endPlan(a);
        break;
      }
      const next = tierOf(m.catalog, a.scheduledTier ?? a.tier);
      if (a.declines > 0) {
        a.declines--;
        m.notes.push('renewal declined: PAST_DUE');
        a.status = 'PAST_DUE';
        break;
      }
      const start = plan.periodEnd;
      // Periods end on the plan's anchor day (its start), clamped to shorter months: Jan 31 → Feb 28 → Mar 31.
      let k = 1;
      while (addMonths(plan.anchorAt, k) <= start) k++;
      const end = addMonths(plan.anchorAt, k);
      const purchase: MPurchase = {
        id: null, kind: 'PLAN', status: 'COMPLETED', credits: next.monthlyCredits, amountCents: next.monthlyPriceCents, tier: next.code,
        completedHour: m.hour, seq: ++m.seq, refundRequested: false, periodStart: start,
      };
      a.purchases.push(purchase);
      m.notes.push(`renewal${a.scheduledTier ? ' to the scheduled tier' : ''}`);
      a.tier = next.code;
      a.scheduledTier = null;
      plan.periodStart = start;
      plan.periodEnd = end;
      // A month that already ended grants nothing.
      if (next.monthlyCredits > 0 && hourOf(plan, end) > m.hour) {
        addAllowance(m, a, plan, next, next.monthlyCredits, end, purchase);
      }
    }
  }
  for (const a of m.accounts) {
    const before = available(a);
    for (const lot of a.lots) {
      if (lot.expiresHour !== null && lot.expiresHour <= m.hour && lot.remaining > 0) {
        m.notes.push('lot expired');
        lot.remaining = 0;
      }
    }
    fell(m, a, before); // the expiry sweep: one transaction
  }
}

// ---- auto top-up ----

export const boughtThisMonth = (m: Model, t: MAutoTopUp): number => t.bought[m.month] ?? 0;

/**
 * A committed change moved the balance from `before` to what it is now: when that is a fall
 * below the level, with auto top-up on, nothing asked yet and the month under its cap, a
 * purchase is asked for (made after commit: landTopUps).
 */
export function fell(m: Model, a: MAccount, before: number): void {
  const t = a.autoTopUp;
  const now = available(a);
  if (!t || !t.enabled || t.asked || now >= before || now >= t.below || boughtThisMonth(m, t) >= t.maxPerMonth) return;
  t.asked = true;
}

/**
 * One automatic purchase of the account's pack: declined (a decline was due: FAILED, counted,
 * the third in a row turns auto top-up off) or paid (a pack lot, the count cleared). True when paid.
 */
export function buyAutomatically(m: Model, a: MAccount): boolean {
  const t = a.autoTopUp!;
  const declined = a.declines > 0;
  const p: MPurchase = {
    id: null, kind: 'CREDIT_PACK', status: declined ? 'FAILED' : 'COMPLETED', credits: t.pack.credits, amountCents: t.pack.priceCents, tier: null,
    completedHour: m.hour, seq: ++m.seq, refundRequested: false, periodStart: null, automatic: true,
  };
  a.purchases.push(p);
  if (declined) {
    a.declines--;
    t.failed++;
    if (t.failed >= 3) t.enabled = false;
    m.notes.push(`auto top-up declined${t.enabled ? '' : ': turned off'}`);
    return false;
  }
  t.failed = 0;
  t.bought[m.month] = boughtThisMonth(m, t) + 1;
  addLot(m, a, 'PACK_PURCHASE', t.pack.credits, null, null, p);
  m.notes.push('auto top-up bought');
  return true;
}

/** The purchases asked for are made (the system made them after the commits that asked). */
export function landTopUps(m: Model): void {
  for (const a of m.accounts) {
    const t = a.autoTopUp;
    if (!t?.asked) continue;
    t.asked = false;
    // Claimed after commit: still due then (on, below the level, under the cap) — nothing in one command changes that meanwhile.
    buyAutomatically(m, a);
  }
}

/** Back to FREE at once: no period, nothing scheduled. */
export function endPlan(a: MAccount): void {
  a.tier = 'FREE';
  a.status = 'CANCELED';
  a.plan = null;
  a.cancelAtPeriodEnd = false;
  a.scheduledTier = null;
}

/** Credits spent on generations since the purchase, net of generations refunded. */
export function creditsUsedSince(a: MAccount, p: MPurchase): number {
  return a.jobs.filter((j) => j.seq > p.seq).reduce((s, j) => s + j.credits - j.returned, 0);
}
