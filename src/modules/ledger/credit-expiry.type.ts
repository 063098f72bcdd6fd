import { Field, Int, ObjectType } from 'type-graphql';

@ObjectType({ description: 'Credits that expire at one instant' })
export class CreditExpiry {
  @Field(_type => Int) credits: number;
  @Field(_type => Date) expiresAt: Date;
}
