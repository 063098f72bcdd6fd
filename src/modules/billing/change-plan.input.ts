import { IsOptional, MaxLength } from 'class-validator';
import { Field, ID, InputType, Int, ObjectType } from 'type-graphql';
import { UserError } from '../../common/errors/user-error.type';
import { BillingInterval, TierCode } from '../catalog/catalog.enums';
import { Plan } from '../accounts/plan.type';
import { Balance } from '../ledger/balance.type';
import { Purchase } from './purchase.type';
import { IdempotencyKeyField } from '../../common/idempotency/idempotency-key.field';

@InputType({ description: 'Upgrades take effect at once (prorated); a lower tier, another interval or FREE at the period end.' })
export class ChangePlanInput {
  @Field(_type => TierCode) tier: TierCode;
  @Field(_type => BillingInterval) interval: BillingInterval;

  @Field(_type => ID, { nullable: true, description: "A workspace's plan (its OWNER or an ADMIN)" })
  @IsOptional()
  @MaxLength(128)
  workspaceId?: string | null;

  @IdempotencyKeyField()
  idempotencyKey?: string | null;
}

@ObjectType()
export class ChangePlanPayload {
  @Field(_type => Plan, { nullable: true }) plan: Plan | null;
  @Field(_type => Purchase, { nullable: true, description: 'What was charged now, if anything' }) purchase: Purchase | null;
  @Field(_type => String, {
    nullable: true,
    description: 'Where to pay when the payment provider needs a checkout (a new plan under Stripe): the plan starts, and the purchase completes, once it is paid',
  })
  checkoutUrl: string | null;
  @Field(_type => Balance, { nullable: true }) balance: Balance | null;
  @Field(_type => [UserError]) userErrors: UserError[];
}

@ObjectType({ description: 'What changePlan would charge now and give, decided by the same rules; nothing is changed.' })
export class PlanChangePreview {
  @Field(_type => TierCode) tier: TierCode;
  @Field(_type => BillingInterval) interval: BillingInterval;
  @Field(_type => Int, { description: 'Charged now (a new plan: at its checkout); 0 for a change at the period end' }) amountCents: number;
  @Field(_type => String) currency: string;
  @Field(_type => Int, { description: 'Credits given when it takes effect: a new plan its first month, an upgrade its share of this month' })
  creditsGranted: number;
  @Field(_type => Date, { description: 'Now, or the period end for a lower tier or FREE' }) effectiveAt: Date;
  @Field(_type => [UserError], { description: 'Why changePlan would refuse it' }) userErrors: UserError[];
}
