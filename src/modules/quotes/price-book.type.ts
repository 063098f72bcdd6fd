import { Field, InputType, Int, ObjectType } from 'type-graphql';
import { IsInt, IsOptional, Max, MaxLength, Min, ValidateNested, ArrayMaxSize } from 'class-validator';
import { UserError } from '../../common/errors/user-error.type';
import { CostClass } from './cost-class.enum';

@ObjectType({ description: 'How one cost class is priced, per generation.' })
export class PriceClassRule {
  @Field(_type => CostClass) costClass: CostClass;
  @Field(_type => Int) base: number;
  @Field(_type => Int, { description: 'Videos: credits per second above the first second of the class' }) perExtraSecond: number;
  @Field(_type => Int, { nullable: true, description: 'Highest price of one generation; null: no cap' }) cap: number | null;
  @Field(_type => Int, { description: 'Added above largeSizePixels' }) largeSize: number;
  @Field(_type => Int) premiumModel: number;
  @Field(_type => Int, { description: 'Videos with PREMIUM quality' }) premiumQuality: number;
  @Field(_type => Int, { description: 'Published range: lowest price' }) rangeMin: number;
  @Field(_type => Int, { nullable: true, description: 'Published range: highest price (null: none)' }) rangeMax: number | null;
}

@ObjectType({ description: 'A published, immutable version of the prices.' })
export class PriceBook {
  @Field(_type => Int) version: number;
  @Field(_type => String) note: string;
  @Field(_type => Date) publishedAt: Date;
  @Field(_type => Int, { description: 'A generation above this many pixels (width × height) is large' }) largeSizePixels: number;
  @Field(_type => [PriceClassRule]) classes: PriceClassRule[];
}

@InputType()
export class PriceClassRuleInput {
  @Field(_type => CostClass) costClass: CostClass;
  @Field(_type => Int) @IsInt() @Min(0) @Max(100000) base: number;
  @Field(_type => Int, { defaultValue: 0 }) @IsInt() @Min(0) @Max(100000) perExtraSecond: number;
  @Field(_type => Int, { nullable: true }) @IsOptional() @IsInt() @Min(0) @Max(100000) cap?: number | null;
  @Field(_type => Int, { defaultValue: 0 }) @IsInt() @Min(0) @Max(100000) largeSize: number;
  @Field(_type => Int, { defaultValue: 0 }) @IsInt() @Min(0) @Max(100000) premiumModel: number;
  @Field(_type => Int, { defaultValue: 0 }) @IsInt() @Min(0) @Max(100000) premiumQuality: number;
}

@InputType({ description: 'A complete new price book: one rule per cost class.' })
export class PublishPriceBookInput {
  @Field(_type => Int) @IsInt() @Min(1) largeSizePixels: number;
  @Field(_type => [PriceClassRuleInput]) @ValidateNested({ each: true }) @ArrayMaxSize(6) classes: PriceClassRuleInput[];
  @Field(_type => String, { nullable: true }) @IsOptional() @MaxLength(500) note?: string | null;
}

@ObjectType()
export class PublishPriceBookPayload {
  @Field(_type => PriceBook, { nullable: true }) priceBook: PriceBook | null;
  @Field(_type => [UserError]) userErrors: UserError[];
}
