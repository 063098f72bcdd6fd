/**
 * A plan as the lifecycle sees it: the account's plan columns, read under the account row lock
 * (plan-store.ts), decided on by the pure policy (plan-policy.ts).
 */
import type { BillingInterval, TierCode } from '../../catalog/catalog.enums';

export type PlanStatus = 'ACTIVE' | 'CANCELED' | 'PAST_DUE';

export interface PlanState {
  accountId: string;
  tier: TierCode;
  interval: BillingInterval | null;
  status: PlanStatus;
  periodStart: Date | null;
  periodEnd: Date | null;
  /** Where the plan's calendar is counted from (its first period's start): periods and months end on its day. */
  periodAnchor: Date | null;
  /** The current allowance month (FREE with monthly credits has one too, without a period). */
  monthStart: Date | null;
  monthEnd: Date | null;
  cancelAtPeriodEnd: boolean;
  /** A lower tier from the next period. */
  pendingTier: TierCode | null;
  pendingInterval: BillingInterval | null;
  /** The provider's subscription that bills this plan, and its customer. */
  subscription: string | null;
  customer: string | null;
  /** A payment for a new plan or an upgrade was asked of the provider and has not been answered yet. */
  changeInFlight: boolean;
}

/** The accounts row's plan columns, as SQL returns them. */
export interface AccountPlanRow {
  id: string;
  tier: TierCode;
  billing_interval: BillingInterval | null;
  plan_status: PlanStatus;
  current_period_start: Date | null;
  current_period_end: Date | null;
  period_anchor: Date | null;
  cancel_at_period_end: boolean;
  pending_tier: TierCode | null;
  pending_interval: BillingInterval | null;
  allowance_period_start: Date | null;
  allowance_period_end: Date | null;
  customer_ref: string | null;
  subscription_ref: string | null;
  change_in_flight?: boolean;
}

export function stateOf(a: AccountPlanRow): PlanState {
  return {
    accountId: a.id,
    tier: a.tier,
    interval: a.billing_interval,
    status: a.plan_status,
    periodStart: a.current_period_start,
    periodEnd: a.current_period_end,
    periodAnchor: a.period_anchor ?? a.current_period_start,
    monthStart: a.allowance_period_start,
    monthEnd: a.allowance_period_end,
    cancelAtPeriodEnd: a.cancel_at_period_end,
    pendingTier: a.pending_tier,
    pendingInterval: a.pending_interval,
    subscription: a.subscription_ref,
    customer: a.customer_ref,
    changeInFlight: a.change_in_flight ?? false,
  };
}
