import { IsOptional, Length, Matches, MaxLength } from 'class-validator';
import { Field, ID, InputType, ObjectType } from 'type-graphql';
import { UserError } from '../../common/errors/user-error.type';
import { Balance } from '../ledger/balance.type';
import { Purchase } from './purchase.type';
import { IdempotencyKeyField } from '../../common/idempotency/idempotency-key.field';

@InputType()
export class PurchaseCreditPackInput {
  @Field(_type => String, { description: 'A code from creditPacks' })
  @Length(1, 64)
  @Matches(/^[^\u0000]*$/, { message: 'packCode must not contain NUL characters' })
  packCode: string;

  @Field(_type => ID, { nullable: true, description: "For a workspace's pool (its OWNER or an ADMIN)" })
  @IsOptional()
  @MaxLength(128)
  workspaceId?: string | null;

  @IdempotencyKeyField()
  idempotencyKey?: string | null;
}

@ObjectType()
export class PurchasePayload {
  @Field(_type => Purchase, { nullable: true }) purchase: Purchase | null;
  @Field(_type => String, { nullable: true, description: 'stripe: where to pay; the purchase stays PENDING until paid' })
  checkoutUrl: string | null;
  @Field(_type => Balance, { nullable: true }) balance: Balance | null;
  @Field(_type => [UserError]) userErrors: UserError[];
}
