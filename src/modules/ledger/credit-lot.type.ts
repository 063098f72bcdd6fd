import { Field, ID, Int, ObjectType } from 'type-graphql';
import { LotSource } from './ledger.enums';

@ObjectType({ description: 'A grant of credits; spending takes from the lot that expires first, then the oldest.' })
export class CreditLot {
  @Field(_type => ID) id: string;
  @Field(_type => LotSource) source: LotSource;
  @Field(_type => Int) granted: number;
  @Field(_type => Int) remaining: number;
  @Field(_type => Date, { nullable: true }) expiresAt: Date | null;
  @Field(_type => Date) createdAt: Date;
}
