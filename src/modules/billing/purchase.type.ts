import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Connection } from '../../common/relay/connection.type';
import { BillingInterval, TierCode } from '../catalog/catalog.enums';

export enum PurchaseKind {
  CREDIT_PACK = 'CREDIT_PACK',
  PLAN = 'PLAN',
}
export enum PurchaseStatus {
  PENDING = 'PENDING',
  COMPLETED = 'COMPLETED',
  FAILED = 'FAILED',
  REFUNDED = 'REFUNDED',
  PARTIALLY_REFUNDED = 'PARTIALLY_REFUNDED',
  /** The buyer disputed the charge at their bank: its unspent credits are withdrawn (given back once if the merchant wins). */
  DISPUTED = 'DISPUTED',
}
registerEnumType(PurchaseKind, { name: 'PurchaseKind' });
registerEnumType(PurchaseStatus, { name: 'PurchaseStatus' });

/** A purchases row as SQL returns it. */
export interface PurchaseRow {
  id: string;
  account_id: string;
  kind: PurchaseKind;
  status: PurchaseStatus;
  pack_code: string | null;
  tier: TierCode | null;
  billing_interval: BillingInterval | null;
  credits: number;
  amount_cents: number;
  currency: string;
  provider: string;
  provider_ref: string | null;
  checkout_url: string | null;
  failure_reason: string | null;
  /** Bought by auto top-up, not by a person. */
  automatic: boolean;
  created_at: Date;
  completed_at: Date | null;
  refundable_until: Date | null;
  period_start: Date | null;
  period_end: Date | null;
}

@ObjectType()
export class Purchase {
  @Field(_type => ID) id: string;
  @Field(_type => PurchaseKind) kind: PurchaseKind;
  @Field(_type => PurchaseStatus) status: PurchaseStatus;
  @Field(_type => String, { nullable: true }) packCode: string | null;
  @Field(_type => TierCode, { nullable: true }) tier: TierCode | null;
  @Field(_type => BillingInterval, { nullable: true }) interval: BillingInterval | null;
  @Field(_type => Int) credits: number;
  @Field(_type => Int) amountCents: number;
  @Field(_type => String) currency: string;
  @Field(_type => Date) createdAt: Date;
  @Field(_type => Date, { nullable: true }) completedAt: Date | null;
  @Field(_type => Date, { nullable: true, description: 'Refundable in full until then, if no credit was used since' })
  refundableUntil: Date | null;
  @Field(_type => Boolean, { description: 'Bought by auto top-up (setAutoTopUp), not by a person' }) automatic: boolean;
  /** Not exposed: the row, for the refund fields. */
  row: PurchaseRow;

  static fromRow(r: PurchaseRow): Purchase {
    return Object.assign(new Purchase(), {
      row: r, id: r.id, kind: r.kind, status: r.status, packCode: r.pack_code, tier: r.tier, interval: r.billing_interval, credits: r.credits,
      amountCents: r.amount_cents, currency: r.currency.trim(), createdAt: r.created_at, completedAt: r.completed_at, refundableUntil: r.refundable_until,
      automatic: r.automatic,
    });
  }
}

@ObjectType()
export class PurchaseConnection extends Connection(Purchase) {}
