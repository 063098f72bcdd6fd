import { Field, ID, Int, ObjectType } from 'type-graphql';
import { Feature, TierCode } from '../catalog/catalog.enums';
import { CostClass } from './cost-class.enum';

@ObjectType({ description: 'One part of a price; the parts sum to the total.' })
export class CostLine {
  @Field(_type => String) label: string;
  @Field(_type => Int) credits: number;
}

@ObjectType({ description: 'The price of one generation request, held until expiresAt.' })
export class CostQuote {
  @Field(_type => ID) id: string;
  @Field(_type => Int) credits: number;
  @Field(_type => CostClass) costClass: CostClass;
  @Field(_type => [CostLine]) breakdown: CostLine[];
  @Field(_type => Int) priceBookVersion: number;
  @Field(_type => Date) expiresAt: Date;
  @Field(_type => Boolean, { description: 'The balance covers it now' }) affordable: boolean;
  @Field(_type => Int, { description: 'available - credits (negative: the shortfall)' }) balanceAfter: number;
  @Field(_type => Boolean, { description: 'affordable and no missing features: startGeneration would accept it now' }) canStart: boolean;
  @Field(_type => [Feature], { description: "Empty when the caller's tier allows these settings" }) missingFeatures: Feature[];
  @Field(_type => TierCode, { nullable: true, description: 'The cheapest tier that allows these settings' })
  requiredTier: TierCode | null;
}
