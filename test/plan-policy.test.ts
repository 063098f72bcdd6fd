/**
 * The plan policy as a table: every plan state × command, with the decision asserted exactly
 * (refusal, plan columns, purchase, grants, top-up, provider calls in order, notices). Pure: no
 * database, no server, fixed instants only.
 */
import { derivedId } from '../src/common/ids';
import { UserErrorCode } from '../src/common/errors/user-error-code.enum';
import { BillingInterval, QueueClass, TierCode } from '../src/modules/catalog/catalog.enums';
import type { TierEntity } from '../src/modules/catalog/tier.entity';
import { decide, type OpenCheckout, type PlanCommand, type PlanDecision, type Tiers } from '../src/modules/billing/plans/plan-policy';
import type { PlanState } from '../src/modules/billing/plans/plan-state';
import { kindOf, render } from '../src/modules/notifications/notices';

const { FREE, CREATOR, PRO, MAX } = TierCode;
const { MONTHLY, ANNUAL } = BillingInterval;

// ---- the catalog (mirrors the default one) ----
const tierOf = (code: TierCode, name: string, rank: number, monthlyCredits: number, monthlyPriceCents: number, annualPriceCents: number, queueClass: QueueClass, defaultLowCreditThreshold: number) =>
  ({ code, name, rank, monthlyCredits, monthlyPriceCents, annualPriceCents, currency: 'USD', queueClass, defaultLowCreditThreshold }) as TierEntity;
const catalog = (): Map<TierCode, TierEntity> => new Map([
  [FREE, tierOf(FREE, 'Free', 0, 0, 0, 0, QueueClass.STANDARD, 5)],
  [CREATOR, tierOf(CREATOR, 'Creator', 1, 300, 1200, 11520, QueueClass.PRIORITY, 30)],
  [PRO, tierOf(PRO, 'Pro', 2, 1000, 2900, 27840, QueueClass.FAST, 100)],
  [MAX, tierOf(MAX, 'Max', 3, 3000, 7900, 75840, QueueClass.INSTANT, 300)],
]);
const tiers: Tiers = catalog();

// ---- instants (UTC) ----
const T0 = '2025-01-31T10:00:00.000Z'; // every 2025 plan starts here: months clamp (Feb 28, Mar 31 …)
const FEB28 = '2025-02-28T10:00:00.000Z';
const MAR31 = '2025-03-31T10:00:00.000Z';
const APR30 = '2025-04-30T10:00:00.000Z';
const MAY31 = '2025-05-31T10:00:00.000Z';
const DEC31 = '2025-12-31T10:00:00.000Z';
const Y1 = '2026-01-31T10:00:00.000Z'; // the annual period's end
const NOW = '2025-02-10T04:00:00.000Z'; // inside PRO's first month
const NOW_R = '2025-02-28T10:30:00.000Z'; // half an hour after PRO's period end
const NOW_PD = '2025-03-03T10:00:00.000Z'; // PRO unpaid since Feb 28
const NOW_A = '2025-04-12T16:00:00.000Z'; // inside the annual plan's third month
const L0 = '2024-01-31T10:00:00.000Z'; // leap year: Jan 31 → Feb 29
const LFEB29 = '2024-02-29T10:00:00.000Z';
const d = (iso: string) => new Date(iso);

// ---- states ----
const ACCT = 'acct-1';
const SUB = 'sub_1';
const CUS = 'cus_1';
const free: PlanState = {
  accountId: ACCT, tier: FREE, interval: null, status: 'ACTIVE', periodStart: null, periodEnd: null, periodAnchor: null, monthStart: null, monthEnd: null,
  cancelAtPeriodEnd: false, pendingTier: null, pendingInterval: null, subscription: null, customer: null, changeInFlight: false,
};
const freeCanceled: PlanState = { ...free, status: 'CANCELED', customer: CUS };
const pro: PlanState = { ...free, tier: PRO, interval: MONTHLY, periodStart: d(T0), periodEnd: d(FEB28), monthStart: d(T0), monthEnd: d(FEB28), subscription: SUB, customer: CUS };
const proCanceling: PlanState = { ...pro, cancelAtPeriodEnd: true };
const proDowngrading: PlanState = { ...pro, pendingTier: CREATOR, pendingInterval: MONTHLY };
const proPastDue: PlanState = { ...pro, status: 'PAST_DUE' };
/** PRO after its period end (used with NOW_R): the provider has not said the renewal was paid. */
const renewing: PlanState = { ...pro };
const leapPro: PlanState = { ...pro, periodStart: d(L0), periodEnd: d(LFEB29), monthStart: d(L0), monthEnd: d(LFEB29) };
const creatorAnnual: PlanState = { ...pro, tier: CREATOR, interval: ANNUAL, periodStart: d(T0), periodEnd: d(Y1), monthStart: d(MAR31), monthEnd: d(APR30) };
const annualLastMonth: PlanState = { ...creatorAnnual, monthStart: d(DEC31), monthEnd: d(Y1) };
const leapAnnual: PlanState = { ...creatorAnnual, periodStart: d(L0), periodEnd: d(T0), monthStart: d(L0), monthEnd: d(LFEB29) };
/** An annual plan refunded for its share: it runs to the end of its current month. */
const annualShareRefunded: PlanState = { ...creatorAnnual, periodEnd: d(APR30), cancelAtPeriodEnd: true };
/** A plan payment (a first plan's, an upgrade's) asked of the provider and not answered yet. */
const freeSubscribing: PlanState = { ...free, changeInFlight: true };
const proUpgrading: PlanState = { ...pro, changeInFlight: true };
const upgraded: PlanState = { ...pro, tier: MAX }; // paid PRO for the period, upgraded to MAX inside it
const upgradedThenLower: PlanState = { ...upgraded, pendingTier: CREATOR, pendingInterval: MONTHLY };

// ---- commands ----
const open = (tier: TierCode, interval: BillingInterval, amountCents: number): OpenCheckout => ({ id: 'p-open', tier, interval, amountCents, checkoutUrl: 'https://pay.test/p-open' });
const change = (tier: TierCode, interval: BillingInterval, openCheckout: OpenCheckout | null = null): PlanCommand => ({ type: 'change', tier, interval, purchaseId: 'p-new', openCheckout });
const cancel: PlanCommand = { type: 'cancel' };
const subscriptionPaid = (tier: TierCode, interval: BillingInterval, customer: string | null): PlanCommand => ({ type: 'subscriptionPaid', purchase: { id: 'p-new', tier, interval }, subscription: 'sub_2', customer, ref: 'in_first' });
const upgradePaid = (tier: TierCode, credits: number | null, amountCents: number): PlanCommand => ({ type: 'upgradePaid', purchase: { id: 'p-up', tier, credits }, amountCents, ref: 'in_up' });
const upgradeRefused: PlanCommand = { type: 'upgradeRefused', purchaseId: 'p-up', reason: 'card_declined' };
const renewalPaid = (amountPaid: number): PlanCommand => ({ type: 'renewalPaid', invoice: { id: 'in_renew', subscription: SUB, reason: 'renewal', rawReason: 'subscription_cycle', amountPaid, metadata: {} } });
const renewalFailed: PlanCommand = { type: 'renewalFailed' };
const subscriptionEnded: PlanCommand = { type: 'subscriptionEnded' };
const timePassed: PlanCommand = { type: 'timePassed', periodPurchaseId: 'p-period' };
const refunded = (scope: 'plan' | 'upgrade' | 'annualShare', previousTier?: TierCode): PlanCommand => ({ type: 'refunded', scope, previousTier });

// ---- expected outcomes ----
type Call = [kind: string, keyPrefix: string, payload: Record<string, unknown>];
interface Outcome {
  error?: { code: UserErrorCode; message: string; field?: string[] };
  reuse?: string;
  fail?: { id: string; reason: string };
  end?: boolean;
  changes?: Record<string, unknown>;
  purchase?: Record<string, unknown>;
  complete?: Record<string, unknown>;
  /** [start, end, credits, purchaseId] */
  grants?: [string, string, number, string | null][];
  topUp?: Record<string, unknown>;
  /** [invoice id, why] */
  refundInvoice?: [string, string];
  calls?: Call[];
  notices?: [string, string][];
}
type Row = [behaviour: string, state: PlanState, command: PlanCommand, now: string, want: Outcome];

const NOTHING: Outcome = {};
const refused = (message: string, field?: string[]): Outcome => ({ error: { code: UserErrorCode.INVALID_STATE, message, field } });
const NO_PLAN = 'There is no paid plan to cancel';
const PAYMENT_IN_FLIGHT = 'A payment for your plan is in progress; try again in a moment';
const RENEWAL_IN_PROGRESS = 'Your plan’s renewal is in progress at the payment provider; try again in a few minutes, once it is settled';
const INTERVAL = ['input', 'interval'];
const intervalFixed = (adverb: string) => `Your plan is billed ${adverb} and its interval cannot be changed while it runs; cancel it and subscribe again when it ends`;
const CANCEL_AT_END = { cancelAtPeriodEnd: true, pendingTier: null, pendingInterval: null };
const UNDONE = { cancelAtPeriodEnd: false, pendingTier: null, pendingInterval: null };
const lower = (tier: TierCode, interval: BillingInterval) => ({ pendingTier: tier, pendingInterval: interval, cancelAtPeriodEnd: false });
const UPGRADED = (tier: TierCode) => ({ tier, pendingTier: null, pendingInterval: null, cancelAtPeriodEnd: false });
const buy = (p: Record<string, unknown>) => ({ currency: 'USD', ref: null, periodStart: null, periodEnd: null, ...p });
const ended = (message: string): [string, string] => ['PLAN_ENDED', message];
const renewalId = (start: string) => derivedId('renewal', ACCT, start);

const price = (amountCents: number, interval: BillingInterval, name: string) => ({ amountCents, currency: 'USD', interval, name: `${name} plan` });
const CREATOR_M = price(1200, MONTHLY, 'Creator');
const PRO_M = price(2900, MONTHLY, 'Pro');
const MAX_M = price(7900, MONTHLY, 'Max');
const PRO_A = price(27840, ANNUAL, 'Pro');
const MAX_A = price(75840, ANNUAL, 'Max');
const CREATOR_A = price(11520, ANNUAL, 'Creator');
const subscribe = (p: object, customerRef: string | null): Call => ['plan.subscribe', 'plan-checkout-p-new', { purchaseId: 'p-new', accountId: ACCT, customerRef, price: p }];
const upgrade = (tier: TierCode, p: object, resume: boolean): Call =>
  ['plan.upgrade', 'plan-upgrade-p-new', { subscription: SUB, purchaseId: 'p-new', price: p, metadata: { upgradePurchaseId: 'p-new', upgradeTier: tier }, resume }];
const reprice = (key: string, p: object): Call => ['subscription.reprice', key, { subscription: SUB, price: p }];
const cancelAtEnd = (key: string, c: boolean): Call => ['subscription.cancel_at_period_end', key, { subscription: SUB, cancel: c }];
const cancelNow = (key: string, subscription = SUB): Call => ['subscription.cancel_now', key, { subscription }];
const cancelAt = (key: string, at: string): Call => ['subscription.cancel_at', key, { subscription: SUB, at }];

// ---- the decision, seen as an Outcome (dates as ISO strings, empty lists left out) ----
const iso = (v: unknown): unknown =>
  v instanceof Date ? v.toISOString() : Array.isArray(v) ? v.map(iso) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, iso(x)])) : v;
function view(dec: PlanDecision, want: Outcome): Outcome {
  const o: Outcome = {};
  if (dec.error) o.error = dec.error;
  if (dec.reuse) o.reuse = dec.reuse.id;
  if (dec.fail) o.fail = dec.fail;
  if (dec.end !== undefined) o.end = dec.end;
  if (dec.changes) o.changes = iso(dec.changes) as Record<string, unknown>;
  if (dec.purchase) o.purchase = iso(dec.purchase) as Record<string, unknown>;
  if (dec.complete) o.complete = iso(dec.complete) as Record<string, unknown>;
  if (dec.grants.length) o.grants = dec.grants.map((g) => [g.start.toISOString(), g.end.toISOString(), g.credits, g.purchaseId]);
  if (dec.topUp) o.topUp = iso(dec.topUp) as Record<string, unknown>;
  if (dec.refundInvoice) o.refundInvoice = [dec.refundInvoice.invoice.id, dec.refundInvoice.why];
  if (dec.calls.length) {
    o.calls = dec.calls.map(({ kind, payload: { key, ...rest } }, i): Call => {
      const prefix = want.calls?.[i]?.[1];
      return [kind, prefix !== undefined && key.startsWith(prefix) ? prefix : key, rest];
    });
  }
  if (dec.notices.length) o.notices = dec.notices.map((n) => [kindOf(n), render(n.template, n.params)]);
  return o;
}
const run = (s: PlanState, c: PlanCommand, now: string, t: Tiers = tiers) => decide(s, c, d(now), t);

// ---- the table ----
// Upgrade credits = (target − current monthly credits) × share of the allowance month left, rounded down:
//  PRO (month Jan 31 10:00 → Feb 28 10:00 = 672 h; NOW = Feb 10 04:00, 438 h left) → MAX: 2000 × 438/672 = 1303.57 → 1303
//  CREATOR annual (month 3: Mar 31 10:00 → Apr 30 10:00 = 720 h; NOW_A = Apr 12 16:00, 426 h left)
//    → PRO: 700 × 426/720 = 414.17 → 414;  → MAX: 2700 × 426/720 = 1597.5 → 1597
const upgradeTo = (tier: TierCode, interval: BillingInterval, credits: number, periodStart: string, periodEnd: string) =>
  buy({ id: 'p-new', status: 'PENDING', tier, interval, credits, amountCents: 0, periodStart, periodEnd });
const newPlan = (tier: TierCode, interval: BillingInterval, credits: number, amountCents: number) => buy({ id: 'p-new', status: 'PENDING', tier, interval, credits, amountCents });

const changeRows: Row[] = [
  ['opens a checkout for a first plan at its monthly price, changing nothing until it is paid', free, change(PRO, MONTHLY), NOW,
    { purchase: newPlan(PRO, MONTHLY, 1000, 2900), calls: [subscribe(PRO_M, null)] }],
  ['opens a checkout for an annual plan at the annual price', free, change(CREATOR, ANNUAL), NOW, { purchase: newPlan(CREATOR, ANNUAL, 300, 11520), calls: [subscribe(CREATOR_A, null)] }],
  ['answers the open checkout of the same plan again', free, change(PRO, MONTHLY, open(PRO, MONTHLY, 2900)), NOW, { reuse: 'p-open' }],
  ['replaces an open checkout of another plan by a new one', free, change(PRO, MONTHLY, open(CREATOR, MONTHLY, 1200)), NOW,
    { fail: { id: 'p-open', reason: 'replaced by a newer checkout' }, purchase: newPlan(PRO, MONTHLY, 1000, 2900), calls: [subscribe(PRO_M, null)] }],
  ['refuses FREE on FREE: there is no plan to cancel', free, change(FREE, MONTHLY), NOW, refused(NO_PLAN)],
  ['starts a new plan after one ended, with the provider customer kept', freeCanceled, change(MAX, MONTHLY), NOW, { purchase: newPlan(MAX, MONTHLY, 3000, 7900), calls: [subscribe(MAX_M, CUS)] }],
  ['upgrades once paid: prorated credits for the month left, the subscription on the new price', pro, change(MAX, MONTHLY), NOW,
    { purchase: upgradeTo(MAX, MONTHLY, 1303, NOW, FEB28), calls: [upgrade(MAX, MAX_M, false)] }],
  ['schedules a lower tier for the period end and reprices the subscription', pro, change(CREATOR, MONTHLY), NOW,
    { changes: lower(CREATOR, MONTHLY), calls: [reprice('reprice-p-new', CREATOR_M)] }],
  ['refuses the plan it is already on, nothing scheduled', pro, change(PRO, MONTHLY), NOW, refused('You are already on the Pro plan, billed monthly')],
  ['refuses an interval change of a running plan', pro, change(PRO, ANNUAL), NOW, refused(intervalFixed('monthly'), INTERVAL)],
  ['refuses an upgrade that also changes the interval', pro, change(MAX, ANNUAL), NOW, refused(intervalFixed('monthly'), INTERVAL)],
  ['refuses a lower tier that also changes the interval', pro, change(CREATOR, ANNUAL), NOW, refused(intervalFixed('monthly'), INTERVAL)],
  ['cancels at the period end when FREE is asked for', pro, change(FREE, MONTHLY), NOW, { changes: CANCEL_AT_END, calls: [cancelAtEnd(`cancel-${ACCT}-${NOW}`, true)] }],
  ['resumes a plan cancelled at its period end', proCanceling, change(PRO, MONTHLY), NOW, { changes: UNDONE, calls: [cancelAtEnd('resume-p-new', false)] }],
  ['upgrades a cancelled plan, resuming it in the same provider update', proCanceling, change(MAX, MONTHLY), NOW,
    { purchase: upgradeTo(MAX, MONTHLY, 1303, NOW, FEB28), calls: [upgrade(MAX, MAX_M, true)] }],
  ['schedules a lower tier instead of the cancellation: resumed, then repriced', proCanceling, change(CREATOR, MONTHLY), NOW,
    { changes: lower(CREATOR, MONTHLY), calls: [cancelAtEnd('resume-p-new', false), reprice('reprice-p-new', CREATOR_M)] }],
  ['refuses an interval change of a plan cancelled at its period end', proCanceling, change(PRO, ANNUAL), NOW, refused(intervalFixed('monthly'), INTERVAL)],
  ['undoes a scheduled lower tier and puts the current price back', proDowngrading, change(PRO, MONTHLY), NOW, { changes: UNDONE, calls: [reprice('reprice-p-new', PRO_M)] }],
  ['upgrades over a scheduled lower tier: repriced to the current price first, then upgraded without resume', proDowngrading, change(MAX, MONTHLY), NOW,
    { purchase: upgradeTo(MAX, MONTHLY, 1303, NOW, FEB28), calls: [reprice('reprice-p-new', PRO_M), upgrade(MAX, MAX_M, false)] }],
  ['cancels over a scheduled lower tier, putting the current price back', proDowngrading, change(FREE, MONTHLY), NOW,
    { changes: CANCEL_AT_END, calls: [cancelAtEnd(`cancel-${ACCT}-${NOW}`, true), reprice(`cancel-${ACCT}-${NOW}-reprice`, PRO_M)] }],
  ['replaces an unpaid plan by a new checkout: it ends now, its subscription cancelled first', proPastDue, change(PRO, MONTHLY), NOW_PD,
    { end: true, purchase: newPlan(PRO, MONTHLY, 1000, 2900), calls: [cancelNow('cancel-now-p-new'), subscribe(PRO_M, CUS)] }],
  ['replaces an unpaid plan by another tier and interval', proPastDue, change(MAX, ANNUAL), NOW_PD,
    { end: true, purchase: newPlan(MAX, ANNUAL, 3000, 75840), calls: [cancelNow('cancel-now-p-new'), subscribe(MAX_A, CUS)] }],
  ['ends an unpaid plan at once when FREE is asked for', proPastDue, change(FREE, MONTHLY), NOW_PD,
    { end: true, calls: [cancelNow(`cancel-${ACCT}-${NOW_PD}`)], notices: [ended('Your unpaid Pro plan ended as you asked; you are on the Free plan now.')] }],
  ['upgrades an annual plan in its third month: credits for that month left, the annual price', creatorAnnual, change(PRO, ANNUAL), NOW_A,
    { purchase: upgradeTo(PRO, ANNUAL, 414, NOW_A, Y1), calls: [upgrade(PRO, PRO_A, false)] }],
  ['upgrades an annual plan two tiers up', creatorAnnual, change(MAX, ANNUAL), NOW_A, { purchase: upgradeTo(MAX, ANNUAL, 1597, NOW_A, Y1), calls: [upgrade(MAX, MAX_A, false)] }],
  ['refuses the annual plan it is already on (in plain English)', creatorAnnual, change(CREATOR, ANNUAL), NOW_A, refused('You are already on the Creator plan, billed annually')],
  ['refuses to make a running annual plan monthly (in plain English)', creatorAnnual, change(PRO, MONTHLY), NOW_A, refused(intervalFixed('annually'), INTERVAL)],
  ['cancels an annual plan at its period end', creatorAnnual, change(FREE, ANNUAL), NOW_A, { changes: CANCEL_AT_END, calls: [cancelAtEnd(`cancel-${ACCT}-${NOW_A}`, true)] }],
  ['refuses an upgrade while the renewal is in progress', renewing, change(MAX, MONTHLY), NOW_R, refused(RENEWAL_IN_PROGRESS)],
  ['refuses a lower tier while the renewal is in progress', renewing, change(CREATOR, MONTHLY), NOW_R, refused(RENEWAL_IN_PROGRESS)],
  ['refuses the same plan while the renewal is in progress', renewing, change(PRO, MONTHLY), NOW_R, refused(RENEWAL_IN_PROGRESS)],
  ['refuses an interval change while the renewal is in progress', renewing, change(PRO, ANNUAL), NOW_R, refused(RENEWAL_IN_PROGRESS)],
  ['refuses FREE while the renewal is in progress', renewing, change(FREE, MONTHLY), NOW_R, refused(RENEWAL_IN_PROGRESS)],
  ['refuses another plan while a first plan’s payment is in flight', freeSubscribing, change(PRO, MONTHLY), NOW, refused(PAYMENT_IN_FLIGHT)],
  ['refuses another change while an upgrade’s payment is in flight', proUpgrading, change(MAX, MONTHLY), NOW, refused(PAYMENT_IN_FLIGHT)],
  ['refuses FREE while an upgrade’s payment is in flight', proUpgrading, change(FREE, MONTHLY), NOW, refused(PAYMENT_IN_FLIGHT)],
];

const cancelRows: Row[] = [
  ['refuses to cancel FREE', free, cancel, NOW, refused(NO_PLAN)],
  ['refuses to cancel a plan that already ended', freeCanceled, cancel, NOW, refused(NO_PLAN)],
  ['cancels at the period end', pro, cancel, NOW, { changes: CANCEL_AT_END, calls: [cancelAtEnd(`cancel-${ACCT}-${NOW}`, true)] }],
  ['cancels again at the period end (the provider told again)', proCanceling, cancel, NOW, { changes: CANCEL_AT_END, calls: [cancelAtEnd(`cancel-${ACCT}-${NOW}`, true)] }],
  ['drops a scheduled lower tier and puts the current price back', proDowngrading, cancel, NOW,
    { changes: CANCEL_AT_END, calls: [cancelAtEnd(`cancel-${ACCT}-${NOW}`, true), reprice(`cancel-${ACCT}-${NOW}-reprice`, PRO_M)] }],
  ['ends an unpaid plan now and stops its subscription', proPastDue, cancel, NOW_PD,
    { end: true, calls: [cancelNow(`cancel-${ACCT}-${NOW_PD}`)], notices: [ended('Your unpaid Pro plan ended as you asked; you are on the Free plan now.')] }],
  ['cancels an annual plan at its period end', creatorAnnual, cancel, NOW_A, { changes: CANCEL_AT_END, calls: [cancelAtEnd(`cancel-${ACCT}-${NOW_A}`, true)] }],
  ['refuses to cancel while the renewal is in progress', renewing, cancel, NOW_R, refused(RENEWAL_IN_PROGRESS)],
  ['refuses to cancel while an upgrade’s payment is in flight', proUpgrading, cancel, NOW, refused(PAYMENT_IN_FLIGHT)],
];

const started = (tier: TierCode, interval: BillingInterval, start: string, end: string, monthEnd: string, customer: string, lowCreditThreshold: number) => ({
  tier, interval, status: 'ACTIVE', periodStart: start, periodEnd: end, periodAnchor: start, monthStart: start, monthEnd, cancelAtPeriodEnd: false, pendingTier: null, pendingInterval: null,
  subscription: 'sub_2', customer, lowCreditThreshold,
});
const welcome = (m: string): [string, string] => ['PURCHASE_COMPLETED', m];
const subscriptionPaidRows: Row[] = [
  ['starts the plan when its first payment is made, with its first month', freeSubscribing, subscriptionPaid(PRO, MONTHLY, 'cus_2'), T0, {
    complete: { id: 'p-new', ref: 'in_first', periodStart: T0, periodEnd: FEB28 }, changes: started(PRO, MONTHLY, T0, FEB28, FEB28, 'cus_2', 100),
    grants: [[T0, FEB28, 1000, 'p-new']], notices: [welcome('Welcome to the Pro plan: 1000 credits a month, fast queue.')] }],
  ['starts a monthly plan on Jan 31 of a leap year: its period ends Feb 29', free, subscriptionPaid(PRO, MONTHLY, 'cus_2'), L0, {
    complete: { id: 'p-new', ref: 'in_first', periodStart: L0, periodEnd: LFEB29 }, changes: started(PRO, MONTHLY, L0, LFEB29, LFEB29, 'cus_2', 100),
    grants: [[L0, LFEB29, 1000, 'p-new']], notices: [welcome('Welcome to the Pro plan: 1000 credits a month, fast queue.')] }],
  ['starts an annual plan on Feb 29, keeping the known customer: a year to Feb 28, its first month to Mar 29', freeCanceled, subscriptionPaid(CREATOR, ANNUAL, null), LFEB29, {
    complete: { id: 'p-new', ref: 'in_first', periodStart: LFEB29, periodEnd: FEB28 }, changes: started(CREATOR, ANNUAL, LFEB29, FEB28, '2024-03-29T10:00:00.000Z', CUS, 30),
    grants: [[LFEB29, '2024-03-29T10:00:00.000Z', 300, 'p-new']], notices: [welcome('Welcome to the Creator plan: 300 credits a month, priority queue.')] }],
  ['keeps one subscription when another checkout was paid: the older one is cancelled now', pro, subscriptionPaid(MAX, MONTHLY, 'cus_2'), NOW, {
    complete: { id: 'p-new', ref: 'in_first', periodStart: NOW, periodEnd: '2025-03-10T04:00:00.000Z' },
    changes: started(MAX, MONTHLY, NOW, '2025-03-10T04:00:00.000Z', '2025-03-10T04:00:00.000Z', 'cus_2', 300),
    grants: [[NOW, '2025-03-10T04:00:00.000Z', 3000, 'p-new']], calls: [cancelNow('cancel-now-p-new', SUB)],
    notices: [welcome('Welcome to the Max plan: 3000 credits a month, instant queue.')] }],
];

const upgradeDone = (tier: TierCode, name: string, credits: number, amountCents: number, now: string, periodEnd: string, monthEnd: string): Outcome => ({
  complete: { id: 'p-up', ref: 'in_up', amountCents, periodStart: now, periodEnd },
  changes: UPGRADED(tier),
  topUp: credits > 0 ? { credits, expiresAt: monthEnd, purchaseId: 'p-up', description: `Upgrade to ${name}: ${credits} more credits for the rest of this month` } : undefined,
  notices: [['PURCHASE_COMPLETED', `You are on the ${name} plan now: ${credits} more credits for this month.`]],
});
const upgradePaidRows: Row[] = [
  ['applies a paid upgrade at once: the tier, the recorded credits until the month ends', proUpgrading, upgradePaid(MAX, 1303, 3259), NOW, upgradeDone(MAX, 'Max', 1303, 3259, NOW, FEB28, FEB28)],
  ['records a paid upgrade known only from the provider, its credits prorated now', pro, upgradePaid(MAX, null, 3259), NOW, {
    ...upgradeDone(MAX, 'Max', 1303, 3259, NOW, FEB28, FEB28),
    purchase: buy({ id: 'p-up', status: 'COMPLETED', tier: MAX, interval: MONTHLY, credits: 1303, amountCents: 3259, ref: 'in_up', periodStart: NOW, periodEnd: FEB28 }) }],
  ['clears the cancellation of an upgraded plan', proCanceling, upgradePaid(MAX, 1303, 3259), NOW, upgradeDone(MAX, 'Max', 1303, 3259, NOW, FEB28, FEB28)],
  ['clears the scheduled lower tier of an upgraded plan', proDowngrading, upgradePaid(MAX, 1303, 3259), NOW, upgradeDone(MAX, 'Max', 1303, 3259, NOW, FEB28, FEB28)],
  ['upgrades an annual plan, the credits expiring with its third month', creatorAnnual, upgradePaid(PRO, null, 9181), NOW_A, {
    ...upgradeDone(PRO, 'Pro', 414, 9181, NOW_A, Y1, APR30),
    purchase: buy({ id: 'p-up', status: 'COMPLETED', tier: PRO, interval: ANNUAL, credits: 414, amountCents: 9181, ref: 'in_up', periodStart: NOW_A, periodEnd: Y1 }) }],
  ['grants no top-up when the upgrade was worth no credits', pro, upgradePaid(MAX, 0, 3259), NOW, upgradeDone(MAX, 'Max', 0, 3259, NOW, FEB28, FEB28)],
  ['ignores an upgrade paid for an unpaid plan', proPastDue, upgradePaid(MAX, 1303, 3259), NOW_PD, NOTHING],
  ['ignores an upgrade paid on FREE', free, upgradePaid(MAX, 1303, 3259), NOW, NOTHING],
  ['ignores an "upgrade" that is not to a higher tier', pro, upgradePaid(CREATOR, 0, 0), NOW, NOTHING],
];

const upgradeRefusedRows: Row[] = [
  ['fails a refused upgrade and changes nothing', proUpgrading, upgradeRefused, NOW, { fail: { id: 'p-up', reason: 'card_declined' } }],
  ['keeps the cancellation of a plan whose upgrade was refused', proCanceling, upgradeRefused, NOW, { fail: { id: 'p-up', reason: 'card_declined' } }],
  ['puts the scheduled lower price back after a refused upgrade', proDowngrading, upgradeRefused, NOW,
    { fail: { id: 'p-up', reason: 'card_declined' }, calls: [reprice('restore-p-up', CREATOR_M)] }],
];

const renewed = (tier: TierCode, name: string, credits: number, amountCents: number, interval: BillingInterval, start: string, end: string, monthEnd: string): Outcome => ({
  purchase: buy({ id: renewalId(start), status: 'COMPLETED', tier, interval, credits, amountCents, ref: 'in_renew', periodStart: start, periodEnd: end }),
  changes: { tier, status: 'ACTIVE', periodStart: start, periodEnd: end, monthStart: start, monthEnd, pendingTier: null, pendingInterval: null, cancelAtPeriodEnd: false },
  grants: [[start, monthEnd, credits, renewalId(start)]],
  notices: [['PLAN_RENEWED', `Your ${name} plan renewed: ${credits} fresh credits; unused ones from last month expired.`]],
});
const renewalPaidRows: Row[] = [
  // Periods end on the plan's anchor day (it started Jan 31): Feb 28 → Mar 31, as Stripe bills it, never drifting to the 28th.
  ['starts the next period at the end of the last one, on the anchor day, when the renewal is paid', renewing, renewalPaid(2900), NOW_R, renewed(PRO, 'Pro', 1000, 2900, MONTHLY, FEB28, MAR31, MAR31)],
  ['applies the scheduled lower tier at the renewal', proDowngrading, renewalPaid(1200), NOW_R, renewed(CREATOR, 'Creator', 300, 1200, MONTHLY, FEB28, MAR31, MAR31)],
  ['renews an unpaid plan when its invoice is paid at last, from its period end', proPastDue, renewalPaid(2900), NOW_PD, renewed(PRO, 'Pro', 1000, 2900, MONTHLY, FEB28, MAR31, MAR31)],
  ['renews a leap-year February period on the anchor day: Feb 29 → Mar 31', leapPro, renewalPaid(2900), '2024-02-29T10:30:00.000Z',
    renewed(PRO, 'Pro', 1000, 2900, MONTHLY, LFEB29, '2024-03-31T10:00:00.000Z', '2024-03-31T10:00:00.000Z')],
  ['renews an annual plan for a year, granting its first month', annualLastMonth, renewalPaid(11520), '2026-01-31T10:30:00.000Z',
    renewed(CREATOR, 'Creator', 300, 11520, ANNUAL, Y1, '2027-01-31T10:00:00.000Z', '2026-02-28T10:00:00.000Z')],
  ['refunds a renewal collected for a plan cancelled at its period end', proCanceling, renewalPaid(2900), NOW_R, { refundInvoice: ['in_renew', 'the plan was cancelled before this renewal'] }],
  ['ignores a renewal on FREE', free, renewalPaid(2900), NOW_R, NOTHING],
  ['ignores a renewal after the plan ended', freeCanceled, renewalPaid(2900), NOW_R, NOTHING],
];

const renewalFailedRows: Row[] = [
  ['makes the plan PAST_DUE when its renewal fails', renewing, renewalFailed, NOW_R, { changes: { status: 'PAST_DUE' } }],
  ['makes the plan PAST_DUE keeping its scheduled lower tier', proDowngrading, renewalFailed, NOW_R, { changes: { status: 'PAST_DUE' } }],
  ['changes nothing on a plan already PAST_DUE', proPastDue, renewalFailed, NOW_PD, NOTHING],
  ['ignores a failed renewal on FREE', free, renewalFailed, NOW_R, NOTHING],
  ['ignores a failed renewal after the plan ended', freeCanceled, renewalFailed, NOW_R, NOTHING],
];

const ASKED = (name: string) => ended(`Your ${name} plan ended as you asked; you are on the Free plan now.`);
const BY_PROVIDER = (name: string) => ended(`Your ${name} plan ended; you are on the Free plan now.`);
const subscriptionEndedRows: Row[] = [
  ['ends a plan cancelled at its period end, as asked', proCanceling, subscriptionEnded, NOW_R, { end: true, notices: [ASKED('Pro')] }],
  ['ends an unpaid plan the provider gave up on', proPastDue, subscriptionEnded, NOW_PD, { end: true, notices: [BY_PROVIDER('Pro')] }],
  ['ends a running plan the provider ended', pro, subscriptionEnded, NOW, { end: true, notices: [BY_PROVIDER('Pro')] }],
  ['ends an annual plan the provider ended', creatorAnnual, subscriptionEnded, NOW_A, { end: true, notices: [BY_PROVIDER('Creator')] }],
  ['changes nothing on FREE', free, subscriptionEnded, NOW, NOTHING],
  ['changes nothing after the plan ended', freeCanceled, subscriptionEnded, NOW, NOTHING],
];

const timePassedRows: Row[] = [
  ['grants the next allowance month inside an annual period, to the purchase that paid for it', creatorAnnual, timePassed, APR30,
    { changes: { monthStart: APR30, monthEnd: MAY31 }, grants: [[APR30, MAY31, 300, 'p-period']] }],
  ['counts allowance months from the period start: after Feb 29 comes Mar 31, not Mar 29', leapAnnual, timePassed, LFEB29,
    { changes: { monthStart: LFEB29, monthEnd: '2024-03-31T10:00:00.000Z' }, grants: [[LFEB29, '2024-03-31T10:00:00.000Z', 300, 'p-period']] }],
  ['does nothing inside an allowance month', creatorAnnual, timePassed, NOW_A, NOTHING],
  ['ends a plan cancelled at its period end once the period is over', proCanceling, timePassed, NOW_R, { end: true, notices: [ASKED('Pro')] }],
  ['ends an annual plan refunded for its share at the end of its current month', annualShareRefunded, timePassed, APR30, { end: true, notices: [ASKED('Creator')] }],
  ['does nothing at a period end without cancellation: the provider renews', renewing, timePassed, NOW_R, NOTHING],
  ['does nothing at an annual period end without cancellation', annualLastMonth, timePassed, '2026-01-31T10:30:00.000Z', NOTHING],
  ['does nothing inside a monthly period', pro, timePassed, NOW, NOTHING],
  ['grants nothing to an unpaid plan', proPastDue, timePassed, NOW_PD, NOTHING],
  ['does nothing on FREE without monthly credits', free, timePassed, NOW, NOTHING],
  ['does nothing after the plan ended', freeCanceled, timePassed, NOW, NOTHING],
];

const refundedRows: Row[] = [
  ['ends a refunded plan now and cancels its subscription', pro, refunded('plan'), NOW,
    { end: true, calls: [cancelNow(`refund-cancel-${ACCT}-${NOW}`)], notices: [ended('Your Pro plan ended with its refund; you are on the Free plan now.')] }],
  ['ends a refunded annual plan now', creatorAnnual, refunded('plan'), NOW_A,
    { end: true, calls: [cancelNow(`refund-cancel-${ACCT}-${NOW_A}`)], notices: [ended('Your Creator plan ended with its refund; you are on the Free plan now.')] }],
  ['takes a refunded upgrade back to the tier the period was paid for, at its price from the next invoice', upgraded, refunded('upgrade', PRO), NOW,
    { changes: { tier: PRO }, calls: [reprice(`refund-reprice-${ACCT}-${NOW}`, PRO_M)] }],
  ['takes a refunded upgrade back, keeping the price of a lower tier scheduled since', upgradedThenLower, refunded('upgrade', PRO), NOW,
    { changes: { tier: PRO }, calls: [reprice(`refund-reprice-${ACCT}-${NOW}`, CREATOR_M)] }],
  ['ends an annual plan refunded for its share with its current month', creatorAnnual, refunded('annualShare'), NOW_A,
    { changes: { periodEnd: APR30, ...CANCEL_AT_END }, calls: [cancelAt(`cancel-at-${ACCT}-${NOW_A}`, APR30)] }],
];

const tables: [string, Row[]][] = [
  ['change', changeRows], ['cancel', cancelRows], ['subscriptionPaid', subscriptionPaidRows], ['upgradePaid', upgradePaidRows],
  ['upgradeRefused', upgradeRefusedRows], ['renewalPaid', renewalPaidRows], ['renewalFailed', renewalFailedRows],
  ['subscriptionEnded', subscriptionEndedRows], ['timePassed', timePassedRows], ['refunded', refundedRows],
];

describe('the plan policy', () => {
  describe.each(tables)('%s', (_command, rows) => {
    it.each(rows)('%s', (_behaviour, s, c, now, want) => {
      expect(view(run(s, c, now), want)).toEqual(want);
    });
  });

  const allRows = tables.flatMap(([, rows]) => rows);
  const deepFreeze = <T>(o: T): T => {
    if (o && typeof o === 'object' && !Object.isFrozen(o)) {
      Object.freeze(o);
      for (const v of Object.values(o)) deepFreeze(v);
    }
    return o;
  };

  it('never mutates the state, the command or the catalog', () => {
    for (const [, s, c, now] of allRows) {
      const state = deepFreeze(structuredClone(s));
      const command = deepFreeze(structuredClone(c));
      const frozen = catalog();
      for (const t of [FREE, CREATOR, PRO, MAX]) deepFreeze(frozen.get(t));
      expect(() => run(state, command, now, frozen)).not.toThrow();
      expect(state).toEqual(s);
      expect(command).toEqual(c);
      expect([...frozen.values()]).toEqual([...catalog().values()]);
    }
  });

  it('gives the same decision for the same inputs', () => {
    for (const [, s, c, now] of allRows) expect(run(structuredClone(s), structuredClone(c), now, catalog())).toEqual(run(s, c, now));
  });

  it('derives every renewal purchase id from the account and the period start', () => {
    for (const [, s, c, now] of renewalPaidRows) {
      const dec = run(s, c, now);
      if (!dec.purchase) continue;
      expect(dec.purchase.id).toBe(derivedId('renewal', s.accountId, s.periodEnd!.toISOString()));
      expect(dec.grants.map((g) => g.purchaseId)).toEqual([dec.purchase.id]);
      expect(run(s, renewalPaid(9999), '2025-03-01T00:00:00.000Z').purchase?.id).toBe(dec.purchase.id); // another invoice, later: same period, same id
    }
    const other = run({ ...renewing, accountId: 'acct-2' }, renewalPaid(2900), NOW_R).purchase!.id;
    expect(other).not.toBe(run(renewing, renewalPaid(2900), NOW_R).purchase!.id);
    expect(run(leapPro, renewalPaid(2900), NOW_R).purchase!.id).not.toBe(run(renewing, renewalPaid(2900), NOW_R).purchase!.id);
  });
});
