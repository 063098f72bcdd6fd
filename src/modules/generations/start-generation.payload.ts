import { Field, ObjectType } from 'type-graphql';
import { UserError } from '../../common/errors/user-error.type';
import { CreditPack } from '../catalog/credit-pack.type';
import { Balance } from '../ledger/balance.type';
import { CostQuote } from '../quotes/cost-quote.type';
import { GenerationJob } from './generation-job.type';

@ObjectType()
export class StartGenerationPayload {
  @Field(_type => GenerationJob, { nullable: true }) job: GenerationJob | null;
  @Field(_type => CostQuote, {
    nullable: true,
    description: 'The quote used; on a refusal, the price held as a quote to start with after a top-up or upgrade',
  })
  quote: CostQuote | null;
  @Field(_type => Balance, { nullable: true }) balance: Balance | null;
  @Field(_type => [CreditPack], { description: 'On INSUFFICIENT_CREDITS: the packs that cover the shortfall, smallest first' })
  topUpOptions: CreditPack[];
  @Field(_type => [UserError]) userErrors: UserError[];
}

@ObjectType()
export class CancelGenerationPayload {
  @Field(_type => GenerationJob, { nullable: true }) job: GenerationJob | null;
  @Field(_type => Balance, { nullable: true }) balance: Balance | null;
  @Field(_type => [UserError]) userErrors: UserError[];
}
