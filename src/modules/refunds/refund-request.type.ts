import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { IsOptional, Length, Matches, MaxLength } from 'class-validator';
import { UserError } from '../../common/errors/user-error.type';
import { Connection } from '../../common/relay/connection.type';
import { Purchase } from '../billing/purchase.type';

export enum RefundStatus {
  APPROVED = 'APPROVED',
  DENIED = 'DENIED',
  PENDING_REVIEW = 'PENDING_REVIEW',
}
registerEnumType(RefundStatus, { name: 'RefundStatus' });

/** A refund_requests row as SQL returns it. */
export interface RefundRequestRow {
  id: string;
  purchase_id: string;
  account_id: string;
  status: RefundStatus;
  amount_cents: number;
  credits_revoked: number;
  reason: string | null;
  decision_reason: string;
  created_at: Date;
  decided_at: Date | null;
}

@ObjectType({ description: 'A request to refund a purchase, and its decision under the published policy.' })
export class RefundRequest {
  @Field(_type => ID) id: string;
  /** Not exposed: resolved into `purchase`. */
  purchaseId: string;
  accountId: string;
  @Field(_type => Purchase) purchase: Purchase;
  @Field(_type => RefundStatus) status: RefundStatus;
  @Field(_type => Int, { description: 'Refunded (APPROVED) or proposed (PENDING_REVIEW), in cents' }) amountCents: number;
  @Field(_type => Int) creditsRevoked: number;
  @Field(_type => String, { nullable: true }) reason: string | null;
  @Field(_type => String) decisionReason: string;
  @Field(_type => Date) createdAt: Date;
  @Field(_type => Date, { nullable: true }) decidedAt: Date | null;

  static fromRow(r: RefundRequestRow): RefundRequest {
    return Object.assign(new RefundRequest(), {
      id: r.id, purchaseId: r.purchase_id, accountId: r.account_id, status: r.status, amountCents: r.amount_cents,
      creditsRevoked: r.credits_revoked, reason: r.reason, decisionReason: r.decision_reason, createdAt: r.created_at, decidedAt: r.decided_at,
    });
  }
}

@ObjectType()
export class RefundRequestConnection extends Connection(RefundRequest) {}

@InputType()
export class RequestRefundInput {
  @Field(_type => ID)
  @Length(1, 64)
  @Matches(/^[^\u0000]*$/, { message: 'purchaseId must not contain NUL characters' })
  purchaseId: string;

  @Field(_type => String, { nullable: true, description: 'Why (up to 1000 characters)' })
  @IsOptional()
  @MaxLength(1000)
  @Matches(/^[^\u0000]*$/, { message: 'reason must not contain NUL characters' })
  reason?: string | null;

  @Field(_type => ID, { nullable: true, description: "A purchase of a workspace's (its OWNER or an ADMIN)" })
  @IsOptional()
  @MaxLength(128)
  workspaceId?: string | null;
}

@ObjectType()
export class RequestRefundPayload {
  @Field(_type => RefundRequest, { nullable: true }) refundRequest: RefundRequest | null;
  @Field(_type => [UserError]) userErrors: UserError[];
}

@InputType()
export class ReviewRefundInput {
  @Field(_type => ID)
  @Length(1, 64)
  @Matches(/^[^\u0000]*$/, { message: 'id must not contain NUL characters' })
  id: string;

  @Field(_type => Boolean) approve: boolean;

  @Field(_type => String, { nullable: true, description: 'Shown to the user as the decision reason (up to 1000 characters)' })
  @IsOptional()
  @MaxLength(1000)
  @Matches(/^[^\u0000]*$/, { message: 'note must not contain NUL characters' })
  note?: string | null;
}
