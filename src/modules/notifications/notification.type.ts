import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Connection } from '../../common/relay/connection.type';
import { CreditPack } from '../catalog/credit-pack.type';
import { NotificationKind } from './notification-kind.enum';
import { render } from './notices';

export { NotificationKind };

export enum WarningLevel {
  LOW = 'LOW',
  DEPLETED = 'DEPLETED',
}
registerEnumType(WarningLevel, { name: 'WarningLevel' });

/** A notifications row as SQL returns it. */
export interface NotificationRow {
  id: string;
  kind: NotificationKind;
  template: string;
  params: unknown;
  job_id: string | null;
  purchase_id: string | null;
  refund_request_id: string | null;
  /** The workspace it is about (a copy kept for its OWNER and ADMINs, or a member's limit). */
  workspace_id: string | null;
  created_at: Date;
  read_at: Date | null;
}

@ObjectType({ description: 'Kept for the account, so a client that was offline sees it later.' })
export class Notification {
  @Field(_type => ID) id: string;
  @Field(_type => NotificationKind) kind: NotificationKind;
  @Field(_type => String) message: string;
  @Field(_type => ID, { nullable: true, description: 'The job, for JOB_FINISHED' }) jobId: string | null;
  @Field(_type => ID, { nullable: true, description: 'The purchase it is about (purchases, plans, refunds, reversals)' }) purchaseId: string | null;
  @Field(_type => ID, { nullable: true, description: 'The refund request it is about (REFUND_DECIDED)' }) refundRequestId: string | null;
  @Field(_type => ID, { nullable: true, description: 'The workspace it is about (its OWNER and ADMINs get its notifications; a member, their limit)' }) workspaceId: string | null;
  @Field(_type => Date) createdAt: Date;
  @Field(_type => Date, { nullable: true }) readAt: Date | null;

  static fromRow(r: NotificationRow): Notification {
    return Object.assign(new Notification(), { id: r.id, kind: r.kind, message: render(r.template, r.params), jobId: r.job_id, purchaseId: r.purchase_id, refundRequestId: r.refund_request_id, workspaceId: r.workspace_id ?? null, createdAt: r.created_at, readAt: r.read_at });
  }
}

@ObjectType()
export class NotificationConnection extends Connection(Notification) {}

@ObjectType({ description: 'Pushed when the balance falls below the warning level (LOW) or below the cheapest generation (DEPLETED).' })
export class CreditWarning {
  @Field(_type => WarningLevel) level: WarningLevel;
  @Field(_type => Int) balance: number;
  @Field(_type => Int, { description: 'LOW: the warning level; DEPLETED: the price of the cheapest generation' }) threshold: number;
  @Field(_type => String) message: string;
  @Field(_type => [CreditPack], { description: 'Credit packs, smallest first' }) topUpOptions: CreditPack[];
  @Field(_type => Date) at: Date;
}
