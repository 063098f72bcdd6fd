import { Field, ObjectType } from 'type-graphql';
import { BillingInterval } from '../catalog/catalog.enums';
import { Tier } from '../catalog/tier.type';
import { PlanStatus } from './plan-status.enum';

@ObjectType({ description: "The account's plan: its tier, billing interval and current period." })
export class Plan {
  @Field(_type => Tier) tier: Tier;
  @Field(_type => BillingInterval, { nullable: true, description: 'Null on the FREE tier' }) interval: BillingInterval | null;
  @Field(_type => PlanStatus) status: PlanStatus;
  @Field(_type => Date, { nullable: true }) currentPeriodStart: Date | null;
  @Field(_type => Date, { nullable: true }) currentPeriodEnd: Date | null;
  @Field(_type => Boolean) cancelAtPeriodEnd: boolean;
  @Field(_type => Tier, { nullable: true, description: 'The tier from the next period, when a change is scheduled' }) scheduledTier: Tier | null;
  @Field(_type => BillingInterval, { nullable: true, description: 'The interval from the next period, when a change is scheduled' })
  scheduledInterval: BillingInterval | null;
}
