import { IsInt, IsOptional, Length, Matches, Max, Min } from 'class-validator';
import { Field, ID, InputType, Int, ObjectType } from 'type-graphql';
import { UserError } from '../../../common/errors/user-error.type';
import type { AutoTopUpView } from './auto-top-up.service';

@ObjectType({ description: 'Buying a pack by itself when the balance falls below a level' })
export class AutoTopUp {
  @Field(_type => Boolean) enabled: boolean;
  @Field(_type => String, { description: 'The pack bought each time' }) packCode: string;
  @Field(_type => Int, { description: 'Buy when the available balance falls below this' }) belowCredits: number;
  @Field(_type => Int, { description: 'Most automatic purchases per calendar month (UTC), 1..31' }) maxPerMonth: number;
  @Field(_type => Int, { description: 'Automatic purchases this calendar month (UTC) that did not fail' }) purchasesThisMonth: number;
  @Field(_type => Int, { description: 'Consecutive failures; the third one disables it' }) failedAttempts: number;
  @Field(_type => Date, { nullable: true }) lastPurchaseAt: Date | null;

  static of(v: AutoTopUpView): AutoTopUp {
    const r = v.row;
    return Object.assign(new AutoTopUp(), {
      enabled: r.enabled, packCode: r.pack_code, belowCredits: r.below_credits, maxPerMonth: r.max_per_month,
      purchasesThisMonth: v.purchasesThisMonth, failedAttempts: r.failed_attempts, lastPurchaseAt: r.last_purchase_at,
    });
  }
}

@InputType()
export class SetAutoTopUpInput {
  @Field(_type => String, { description: 'A code from creditPacks' })
  @Length(1, 64)
  @Matches(/^[^\u0000]*$/, { message: 'packCode must not contain NUL characters' })
  packCode: string;

  @Field(_type => Int, { description: 'Buy when the available balance falls below this (1..1,000,000)' })
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  belowCredits: number;

  @Field(_type => Int, { description: 'Most automatic purchases per calendar month (UTC), 1..31' })
  @IsInt()
  @Min(1)
  @Max(31)
  maxPerMonth: number;

  @Field(_type => ID, { nullable: true, description: "A workspace's auto top-up instead of your own (its OWNER or an ADMIN)" })
  @IsOptional()
  @Length(1, 128)
  workspaceId?: string | null;
}

@ObjectType()
export class AutoTopUpPayload {
  @Field(_type => AutoTopUp, { nullable: true }) autoTopUp: AutoTopUp | null;
  @Field(_type => [UserError]) userErrors: UserError[];
}
