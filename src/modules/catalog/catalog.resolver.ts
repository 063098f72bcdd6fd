import { Ctx, Query, Resolver } from 'type-graphql';
import type { Context } from '../../context';
import { CreditPack } from './credit-pack.type';
import { GenerationModel } from './generation-model.type';
import { Tier } from './tier.type';

@Resolver()
export class CatalogResolver {
  @Query(_returns => [Tier], { description: 'Every plan tier, cheapest first. Public.' })
  tiers(@Ctx() ctx: Context): Promise<Tier[]> {
    return ctx.services.catalog.tiers();
  }

  @Query(_returns => [CreditPack], { description: 'Credit packs on sale, smallest first. Public.' })
  creditPacks(@Ctx() ctx: Context): Promise<CreditPack[]> {
    return ctx.services.catalog.packs();
  }

  @Query(_returns => [GenerationModel], { description: 'Generation models. Public.' })
  models(@Ctx() ctx: Context): Promise<GenerationModel[]> {
    return ctx.services.catalog.models();
  }
}
