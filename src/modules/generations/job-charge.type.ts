import { Field, ID, Int, ObjectType } from 'type-graphql';
import { LotSource } from '../ledger/ledger.enums';

@ObjectType({ description: "A job's receipt, one lot at a time: what the lot paid for the job and what of it came back" })
export class JobCharge {
  @Field(_type => ID) lotId: string;
  @Field(_type => LotSource) source: LotSource;
  @Field(_type => Int, { description: 'Credits this lot paid when the job was accepted' }) credits: number;
  @Field(_type => Int, { description: 'Credits given back to this lot (a refund of the job)' }) refunded: number;
}
