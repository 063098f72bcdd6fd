/**
 * The vocabulary of the plan policy: the commands it decides on and the decision it returns.
 */
import type { UserErrorCode } from '../../../common/errors/user-error-code.enum';
import type { BillingInterval, TierCode } from '../../catalog/catalog.enums';
import type { TierEntity } from '../../catalog/tier.entity';
import type { IntentSpec } from '../payment-intents';
import type { SubscriptionInvoice } from '../provider-events';
import type { PlanState } from './plan-state';

export interface PlanError {
  code: UserErrorCode;
  message: string;
  field?: string[];
}

/** A plan purchase waiting for its payment (checkout or subscription update) to be made. */
export interface OpenCheckout {
  id: string;
  tier: TierCode;
  interval: BillingInterval;
  amountCents: number;
  checkoutUrl: string;
}

export type PlanCommand =
  | { type: 'change'; tier: TierCode; interval: BillingInterval; purchaseId: string; openCheckout: OpenCheckout | null }
  | { type: 'cancel' }
  | { type: 'subscriptionPaid'; purchase: { id: string; tier: TierCode; interval: BillingInterval }; subscription: string; customer: string | null; ref: string }
  | { type: 'upgradePaid'; purchase: { id: string; tier: TierCode; credits: number | null }; amountCents: number; ref: string }
  | { type: 'upgradeRefused'; purchaseId: string; reason: string }
  | { type: 'renewalPaid'; invoice: SubscriptionInvoice }
  | { type: 'renewalFailed' }
  | { type: 'subscriptionEnded' }
  | { type: 'timePassed'; periodPurchaseId: string | null }
  /** The plan's payment came back: refunded (by us or at the provider), or disputed with the bank. */
  | { type: 'refunded'; scope: 'plan' | 'upgrade' | 'annualShare'; previousTier?: TierCode; disputed?: boolean };

/** The plan columns a decision sets (plan-store.ts writes them). */
export type PlanChanges = Partial<Omit<PlanState, 'accountId' | 'changeInFlight'>> & { lowCreditThreshold?: number };

export interface NewPlanPurchase {
  id: string;
  status: 'PENDING' | 'COMPLETED' | 'REFUNDED';
  tier: TierCode | null;
  interval: BillingInterval | null;
  credits: number;
  amountCents: number;
  currency: string;
  ref: string | null;
  periodStart: Date | null;
  periodEnd: Date | null;
}

export type { Notice } from '../../notifications/notices';
import type { Notice } from '../../notifications/notices';

export interface PlanDecision {
  error?: PlanError;
  /** The open checkout of the same plan, answered again. */
  reuse?: OpenCheckout;
  /** Back to FREE now: every plan column cleared (before `changes`). */
  end?: boolean;
  changes?: PlanChanges;
  purchase?: NewPlanPurchase;
  complete?: { id: string; ref: string; amountCents?: number; periodStart: Date; periodEnd: Date };
  fail?: { id: string; reason: string };
  /** Allowance months (once per account and month; a month already over grants nothing). */
  grants: { start: Date; end: Date; tier: TierCode; credits: number; purchaseId: string | null; label: string; /** its lot's expiry: `end` plus the tier's rollover */ expiresAt: Date }[];
  /** An upgrade's prorated credits, expiring with the allowance month. */
  topUp?: { credits: number; expiresAt: Date; purchaseId: string; description: string };
  /** A renewal paid for a period not given here: its purchase is kept REFUNDED and the money goes back. */
  refundInvoice?: { invoice: SubscriptionInvoice; why: string };
  calls: IntentSpec[];
  notices: Notice[];
}

/** The tiers of the catalog, by code. */
export type Tiers = Pick<Map<TierCode, TierEntity>, 'get'>;
