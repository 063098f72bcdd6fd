import { Field, ObjectType } from 'type-graphql';

@ObjectType({ description: 'Relay page information.' })
export class PageInfo {
  @Field(_type => Boolean) hasNextPage: boolean;
  @Field(_type => Boolean) hasPreviousPage: boolean;
  @Field(_type => String, { nullable: true, description: 'Null when the page is empty' }) startCursor: string | null;
  @Field(_type => String, { nullable: true, description: 'Null when the page is empty' }) endCursor: string | null;
}
