import { Column, Entity, PrimaryColumn } from 'typeorm';
import { BillingInterval, TierCode } from '../catalog/catalog.enums';
import { PlanStatus } from './plan-status.enum';

@Entity('accounts')
export class AccountEntity {
  /** The token subject (`sub`). */
  @PrimaryColumn({ type: 'text' }) id: string;
  /** A person (their token subject) or a workspace (`workspace:<uuid>`, docs/WORKSPACES.md). */
  @Column({ type: 'text' }) kind: 'PERSON' | 'WORKSPACE';
  @Column({ type: 'text' }) tier: TierCode;
  @Column({ name: 'billing_interval', type: 'text', nullable: true }) billingInterval: BillingInterval | null;
  @Column({ name: 'plan_status', type: 'text' }) planStatus: PlanStatus;
  @Column({ name: 'current_period_start', type: 'timestamptz', nullable: true }) currentPeriodStart: Date | null;
  @Column({ name: 'current_period_end', type: 'timestamptz', nullable: true }) currentPeriodEnd: Date | null;
  @Column({ name: 'cancel_at_period_end', type: 'boolean' }) cancelAtPeriodEnd: boolean;
  /** Available balance; CHECK (available >= 0) in the database. */
  @Column({ type: 'int' }) available: number;
  @Column({ name: 'low_credit_threshold', type: 'int' }) lowCreditThreshold: number;
  @Column({ name: 'low_warning_armed', type: 'boolean' }) lowWarningArmed: boolean;
  @Column({ name: 'depleted_warning_armed', type: 'boolean' }) depletedWarningArmed: boolean;
  @Column({ name: 'pending_tier', type: 'text', nullable: true }) pendingTier: TierCode | null;
  @Column({ name: 'pending_interval', type: 'text', nullable: true }) pendingInterval: BillingInterval | null;
  @Column({ name: 'allowance_period_start', type: 'timestamptz', nullable: true }) allowancePeriodStart: Date | null;
  @Column({ name: 'allowance_period_end', type: 'timestamptz', nullable: true }) allowancePeriodEnd: Date | null;
  /** The day periods and allowance months end on (the first period's start). */
  @Column({ name: 'period_anchor', type: 'timestamptz', nullable: true }) periodAnchor: Date | null;
  /** The payment provider's subscription and customer of the plan. */
  @Column({ name: 'subscription_ref', type: 'text', nullable: true }) subscriptionRef: string | null;
  @Column({ name: 'customer_ref', type: 'text', nullable: true }) customerRef: string | null;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}
