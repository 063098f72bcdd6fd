import { Field, Int, ObjectType } from 'type-graphql';
import { Feature, QueueClass, TierCode } from './catalog.enums';

@ObjectType({ description: 'A subscription tier (plan level) and what it includes.' })
export class Tier {
  @Field(_type => TierCode) code: TierCode;
  @Field(_type => String) name: string;
  @Field(_type => Int) monthlyCredits: number;
  @Field(_type => Int) signupCredits: number;
  @Field(_type => Int) monthlyPriceCents: number;
  @Field(_type => Int) annualPriceCents: number;
  @Field(_type => String) currency: string;
  @Field(_type => QueueClass) queueClass: QueueClass;
  @Field(_type => [Feature]) features: Feature[];
  @Field(_type => Int, { description: 'Longest side in pixels' }) maxResolution: number;
  @Field(_type => Int) characterModelSlots: number;
  @Field(_type => Int, { description: 'Low-credit warning level given to accounts on this tier unless they set their own' })
  defaultLowCreditThreshold: number;
  @Field(_type => Int, { description: "Months a month's unused allowance is kept after its month (0: it expires with its month)" })
  rolloverMonths: number;
}
