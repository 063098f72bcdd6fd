import { Field, Int, ObjectType } from 'type-graphql';

@ObjectType({ description: 'A one-off bundle of credits that never expires; on sale on every plan.' })
export class CreditPack {
  @Field(_type => String) code: string;
  @Field(_type => String) name: string;
  @Field(_type => Int) credits: number;
  @Field(_type => Int) priceCents: number;
  @Field(_type => String) currency: string;
}
