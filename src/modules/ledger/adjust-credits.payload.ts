import { Field, ObjectType } from 'type-graphql';
import { UserError } from '../../common/errors/user-error.type';
import { Balance } from './balance.type';
import { LedgerEntry } from './ledger-entry.type';

@ObjectType()
export class AdjustCreditsPayload {
  @Field(_type => LedgerEntry, { nullable: true }) entry: LedgerEntry | null;
  @Field(_type => Balance, { nullable: true }) balance: Balance | null;
  @Field(_type => [UserError]) userErrors: UserError[];
}
