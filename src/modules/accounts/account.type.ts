import { Field, ID, ObjectType } from 'type-graphql';
import type { AccountEntity } from './account.entity';

@ObjectType({ description: 'A credits account; its id is the token subject.' })
export class Account {
  @Field(_type => ID) id: string;
  /** Not exposed: the row the field resolvers read. */
  row: AccountEntity;

  static of(row: AccountEntity): Account {
    return Object.assign(new Account(), { id: row.id, row });
  }
}
