import { Ctx, FieldResolver, ID, Query, Resolver, Root } from 'type-graphql';
import type { Context } from '../../context';
import { Feature } from './catalog.enums';
import { CreditPack } from './credit-pack.type';
import { FeatureInfo } from './feature-info.type';
import { FEATURE_INFO } from './features';
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

  @Query(_returns => [FeatureInfo], { description: 'Every feature a plan can include, with its name and description. Public.' })
  features(): FeatureInfo[] {
    return Object.values(Feature).map((code) => ({ code, ...FEATURE_INFO[code] }));
  }
}

/** Catalog entries are identified by their code, so client caches normalise them. */
@Resolver(_of => Tier)
export class TierIdResolver {
  @FieldResolver(_returns => ID, { description: 'The code' })
  id(@Root() t: Tier): string {
    return t.code;
  }
}

@Resolver(_of => CreditPack)
export class CreditPackIdResolver {
  @FieldResolver(_returns => ID, { description: 'The code' })
  id(@Root() p: CreditPack): string {
    return p.code;
  }
}

@Resolver(_of => GenerationModel)
export class GenerationModelIdResolver {
  @FieldResolver(_returns => ID, { description: 'The code' })
  id(@Root() m: GenerationModel): string {
    return m.code;
  }
}
