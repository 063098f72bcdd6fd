import { Field, Int, ObjectType } from 'type-graphql';
import { CreditLot } from './credit-lot.type';

@ObjectType({ description: "An account's spendable credits." })
export class Balance {
  /** Not exposed: used to load the lots. */
  accountId: string;
  @Field(_type => Int) available: number;
  @Field(_type => [CreditLot], { description: 'Lots that still hold credits, in spending order' }) lots: CreditLot[];
  @Field(_type => Int) lowCreditThreshold: number;
  @Field(_type => Boolean, { description: 'available < lowCreditThreshold' }) isLow: boolean;

  static of(b: { accountId: string; available: number; lowCreditThreshold: number }): Balance {
    return Object.assign(new Balance(), {
      accountId: b.accountId,
      available: b.available,
      lowCreditThreshold: b.lowCreditThreshold,
      isLow: b.available < b.lowCreditThreshold,
    });
  }
}
