import { Field, ObjectType } from 'type-graphql';
import { UserErrorCode } from './user-error-code.enum';

@ObjectType({ description: 'A domain outcome the user can act on (not enough credits, a refused refund, ...).' })
export class UserError {
  @Field(_type => UserErrorCode) code: UserErrorCode;
  @Field(_type => String) message: string;
  @Field(_type => [String], { nullable: true, description: 'Path to the input field at fault, when there is one' })
  field?: string[] | null;

  static of(code: UserErrorCode, message: string, field?: string[]): UserError {
    return Object.assign(new UserError(), { code, message, field: field ?? null });
  }
}
