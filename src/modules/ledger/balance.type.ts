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
  /**
   * Not exposed: the live event this balance was pushed for (balanceChanged), whose subscribers
   * share one read of the lots (common/events/event-reads.ts); absent on a query's balance.
   * Not enumerable, so it shows in no JSON, spread or log of the balance.
   */
  declare readonly event?: object;

  /** A holder's balance as its account row has it (a person's or a workspace's). */
  static ofRow(row: { id: string; available: number; lowCreditThreshold: number }): Balance {
    return Balance.of({ accountId: row.id, available: row.available, lowCreditThreshold: row.lowCreditThreshold });
  }

  static of(b: { accountId: string; available: number; lowCreditThreshold: number }, from: { event?: object } = {}): Balance {
    const balance = Object.assign(new Balance(), {
      accountId: b.accountId,
      available: b.available,
      lowCreditThreshold: b.lowCreditThreshold,
      isLow: b.available < b.lowCreditThreshold,
    });
    if (from.event) Object.defineProperty(balance, 'event', { value: from.event, enumerable: false });
    return balance;
  }
}
