import { Field, Float, Int, ObjectType } from 'type-graphql';

@ObjectType({ description: 'How far the balance goes' })
export class Runway {
  @Field(_type => Int, { description: "IMAGE STANDARD generations the balance pays for at today's price book" }) standardImages: number;
  @Field(_type => Float, { description: 'Average credits spent per day over the last 30 days (UTC days, today included), net of refunds' }) dailySpend: number;
  @Field(_type => Float, { nullable: true, description: 'available / dailySpend; null when nothing was spent' }) daysLeft: number | null;
}
