import { IsInt, Length, Matches, Max, Min, NotEquals } from 'class-validator';
import { Field, ID, InputType, Int } from 'type-graphql';
import { IdempotencyKeyField } from '../../common/idempotency/idempotency-key.field';

@InputType({ description: 'An operator correction. Positive: a new ADJUSTMENT lot. Negative: taken in spending order.' })
export class AdjustCreditsInput {
  @Field(_type => ID)
  @Length(1, 128)
  @Matches(/^[^\u0000]*$/, { message: 'accountId must not contain NUL characters' })
  accountId: string;

  @Field(_type => Int, { description: 'Signed, non-zero' })
  @IsInt()
  @NotEquals(0, { message: 'amount must not be 0' })
  @Min(-1_000_000_000)
  @Max(1_000_000_000)
  amount: number;

  @Field(_type => String, { description: 'Why; shown in the ledger (1-500 characters)' })
  @Length(1, 500)
  @Matches(/^[^\u0000]*$/, { message: 'reason must not contain NUL characters' })
  reason: string;

  @IdempotencyKeyField()
  idempotencyKey?: string | null;
}
