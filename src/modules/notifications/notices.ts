/**
 * Every notification's wording, in one place. A notification is stored as a template and its
 * parameters (numbers, codes, dates — no sentences), and rendered here when it is read or pushed;
 * the database functions and the services only choose the template and fill its parameters.
 * Changing a sentence here changes it for notifications already kept.
 */
import type { Tx } from '../../common/db/transaction';
import { creditWord, credits } from '../../common/text/credits';
import { NotificationKind } from './notification-kind.enum';

/** What a purchase was, as notifications name it. */
export interface PurchaseRef {
  pack: string | null;
  tier: string | null;
}

const money = (cents: number, currency: string) => `${(cents / 100).toFixed(2)} ${currency.trim()}`;
/** A purchase by name: "the STARTER credit pack", "the PRO plan" (without the article). */
export const purchaseName = (p: PurchaseRef): string => (p.pack ? `${p.pack} credit pack` : `${p.tier} plan`);
const purchase = purchaseName;

/** The reference to a purchase row that notifications keep. */
export const refOf = (p: { pack_code: string | null; tier: string | null }): PurchaseRef => ({ pack: p.pack_code, tier: p.tier });
const withdrawn = (revoked: number) => (revoked > 0 ? `its ${revoked} unspent ${creditWord(revoked)} ${revoked === 1 ? 'was' : 'were'} withdrawn` : 'no unspent credits were left to withdraw');

/** How a plan ended: as asked (at its period end, or an unpaid one at once), with its refund, or by the provider. */
export type PlanEnd = 'asked' | 'unpaidAsked' | 'refund' | 'disputed' | 'ended';

const TEMPLATES = {
  /** Rows kept before notifications were templates: their text as it was. */
  text: { kind: null, text: (p: { text: string }) => p.text },
  lowCredits: {
    kind: NotificationKind.LOW_CREDITS,
    text: (p: { balance: number; threshold: number }) =>
      `${credits(p.balance)} left, below your warning level of ${p.threshold}. Top up with a credit pack to keep generating.`,
  },
  creditsDepleted: {
    kind: NotificationKind.CREDITS_DEPLETED,
    text: (p: { balance: number; threshold: number }) =>
      `${credits(p.balance)} left: not enough for another generation (the cheapest costs ${p.threshold}). Top up with a credit pack; jobs already running will finish.`,
  },
  jobSucceeded: {
    kind: NotificationKind.JOB_FINISHED,
    text: (p: { type: string; results: number }) => `Your ${p.type.toLowerCase()} generation is ready: ${p.results} result${p.results === 1 ? '' : 's'}.`,
  },
  jobFailed: {
    kind: NotificationKind.JOB_FINISHED,
    text: (p: { type: string; reason: string; credits: number }) => `Your ${p.type.toLowerCase()} generation failed (${p.reason}); its ${credits(p.credits)} were refunded.`,
  },
  packPurchased: {
    kind: NotificationKind.PURCHASE_COMPLETED,
    text: (p: { pack: string; credits: number }) => `Thank you: ${credits(p.credits)} from the ${p.pack} pack are yours, and they never expire.`,
  },
  planStarted: {
    kind: NotificationKind.PURCHASE_COMPLETED,
    text: (p: { plan: string; monthlyCredits: number; queue: string }) => `Welcome to the ${p.plan} plan: ${credits(p.monthlyCredits)} a month, ${p.queue.toLowerCase()} queue.`,
  },
  planUpgraded: {
    kind: NotificationKind.PURCHASE_COMPLETED,
    text: (p: { plan: string; credits: number }) => `You are on the ${p.plan} plan now: ${p.credits} more ${creditWord(p.credits)} for this month.`,
  },
  planRenewed: {
    kind: NotificationKind.PLAN_RENEWED,
    // rolloverMonths: absent in notices kept before rollover (their months expired with them).
    text: (p: { plan: string; monthlyCredits: number; rolloverMonths?: number }) =>
      `Your ${p.plan} plan renewed: ${p.monthlyCredits} fresh ${creditWord(p.monthlyCredits)}; ` +
      (p.rolloverMonths ? `each month's unused credits are kept ${p.rolloverMonths} ${p.rolloverMonths === 1 ? 'month' : 'months'} more.` : 'unused ones from last month expired.'),
  },
  creditsExpiring: {
    kind: NotificationKind.CREDITS_EXPIRING,
    text: (p: { credits: number; expiresAt: string; days: number }) =>
      `${credits(p.credits)} expire ${p.days === 1 ? 'tomorrow' : `in ${p.days} days`}, on ${p.expiresAt.slice(0, 10)} at ${p.expiresAt.slice(11, 16)} UTC: use them before then.`,
  },
  autoTopUpCompleted: {
    kind: NotificationKind.AUTO_TOP_UP_COMPLETED,
    text: (p: { pack: string; credits: number; cents: number; currency: string }) =>
      `Auto top-up: ${credits(p.credits)} from the ${p.pack} pack were added for ${money(p.cents, p.currency)}, charged to your saved payment method; they never expire.`,
  },
  autoTopUpFailed: {
    kind: NotificationKind.AUTO_TOP_UP_FAILED,
    text: (p: { pack: string; reason: string; attempts: number; disabled: boolean }) =>
      `Auto top-up could not buy the ${p.pack} pack: ${p.reason}. ` +
      (p.disabled
        ? `That was ${p.attempts} failures in a row, so auto top-up is now off; turn it on again once your payment method works.`
        : `It tries again the next time your balance falls below your level (failure ${p.attempts} of 3 before it turns itself off).`),
  },
  workspaceMemberLimit: {
    kind: NotificationKind.WORKSPACE_MEMBER_LIMIT,
    text: (p: { workspace: string; spent: number; limit: number }) =>
      `You have spent ${credits(p.spent)} of your ${p.limit}-credit monthly limit in the workspace "${p.workspace}" (${Math.floor((p.spent * 100) / p.limit)} %); generations past the limit are refused until next month.`,
  },
  planEnded: {
    kind: NotificationKind.PLAN_ENDED,
    text: (p: { plan: string; how: PlanEnd }) =>
      ({
        asked: `Your ${p.plan} plan ended as you asked; you are on the Free plan now.`,
        unpaidAsked: `Your unpaid ${p.plan} plan ended as you asked; you are on the Free plan now.`,
        refund: `Your ${p.plan} plan ended with its refund; you are on the Free plan now.`,
        disputed: `Your ${p.plan} plan ended: its payment was disputed with your bank; you are on the Free plan now.`,
        ended: `Your ${p.plan} plan ended; you are on the Free plan now.`,
      })[p.how],
  },
  refundDeclined: {
    kind: NotificationKind.REFUND_DECIDED,
    text: (p: { purchase: PurchaseRef; why: string | null }) => `Your refund request for the ${purchase(p.purchase)} was declined${p.why ? `: ${p.why}` : ''}.`,
  },
  refunded: {
    kind: NotificationKind.REFUND_DECIDED,
    text: (p: { purchase: PurchaseRef; cents: number; currency: string; revoked: number }) =>
      `Your ${purchase(p.purchase)} was refunded: ${money(p.cents, p.currency)} is on its way back and its ${credits(p.revoked)} were withdrawn.`,
  },
  refundedInPart: {
    kind: NotificationKind.REFUND_DECIDED,
    text: (p: { purchase: PurchaseRef; cents: number; currency: string; until: string }) =>
      `Your ${purchase(p.purchase)} was refunded in part: ${money(p.cents, p.currency)} is on its way back; the plan runs to the end of this month (${p.until}).`,
  },
  renewalRefunded: {
    kind: NotificationKind.REFUND_DECIDED,
    text: (p: { cents: number; currency: string; tier: string | null; why: string }) =>
      `${money(p.cents, p.currency)} was collected for a new period of your ${p.tier ?? 'paid'} plan after ${p.why}; it was refunded in full.`,
  },
  refundedAtProvider: {
    kind: NotificationKind.PAYMENT_REVERSED,
    text: (p: { purchase: PurchaseRef; cents: number; currency: string; revoked: number }) =>
      `${money(p.cents, p.currency)} of your ${purchase(p.purchase)} was refunded to you at the payment provider: ${withdrawn(p.revoked)}.`,
  },
  disputed: {
    kind: NotificationKind.PAYMENT_REVERSED,
    text: (p: { purchase: PurchaseRef; revoked: number }) =>
      `Your payment for the ${purchase(p.purchase)} was disputed with your bank: ${withdrawn(p.revoked)}.${p.revoked ? ' If the dispute is decided for us, they come back.' : ''}`,
  },
};

type Templates = typeof TEMPLATES;
export type Template = keyof Templates;

/** A notification to keep: a template and its parameters. */
export type Notice = { [T in Template]: { template: T; params: Parameters<Templates[T]['text']>[0] } }[Exclude<Template, 'text'>];

/** The sentence of a kept notification. */
export function render(template: string, params: unknown): string {
  const t = TEMPLATES[template as Template];
  if (!t) throw new Error(`no notification template "${template}"`);
  return (t.text as (p: unknown) => string)(params);
}

/** The NotificationKind a notice is kept under. */
export const kindOf = (n: Notice): NotificationKind => TEMPLATES[n.template].kind;

/** What a notification is about, for a client to link to. */
export interface NoticeLinks {
  jobId?: string | null;
  purchaseId?: string | null;
  refundRequestId?: string | null;
}

/** Keeps a notice for the account, in the caller's transaction. */
export async function keepNotice(tx: Tx, accountId: string, n: Notice, now: Date, links: NoticeLinks = {}): Promise<void> {
  await tx.query(
    'INSERT INTO notifications (account_id, kind, template, params, job_id, purchase_id, refund_request_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
    [accountId, kindOf(n), n.template, JSON.stringify(n.params), links.jobId ?? null, links.purchaseId ?? null, links.refundRequestId ?? null, now],
  );
}

