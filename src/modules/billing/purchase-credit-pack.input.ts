import { IsOptional, Length } from 'class-validator';
import { Field, InputType, ObjectType } from 'type-graphql';
import { UserError } from '../../common/errors/user-error.type';
import { Balance } from '../ledger/balance.type';
import { Purchase } from './purchase.type';

@InputType()
export class PurchaseCreditPackInput {
  @Field(_type => String, { description: 'A code from creditPacks' })
  @Length(1, 64)
  packCode: string;

  @Field(_type => String, { nullable: true, description: 'Up to 255 characters, scoped to the caller' })
  @IsOptional()
  @Length(1, 255)
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
