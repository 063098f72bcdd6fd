import { Arg, Authorized, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import { holderOrThrow } from '../workspaces/holder';
import { Role } from '../../common/auth/role.enum';
import { UserErrorCode } from '../../common/errors/user-error-code.enum';
import { UserError } from '../../common/errors/user-error.type';
import { callerId, type Context } from '../../context';
import { CostClass } from './cost-class.enum';
import { CostQuote } from './cost-quote.type';
import { GenerationSettingsInput } from './generation-settings.input';
import type { PriceBook as Book } from './price-book.service';
import { PriceBook, PublishPriceBookInput, PublishPriceBookPayload } from './price-book.type';
import { PUBLISHED_RANGES, type PriceRules } from './price-rules';

export function toPriceBook(b: Book): PriceBook {
  return {
    version: b.version,
    note: b.note,
    publishedAt: b.publishedAt,
    largeSizePixels: b.rules.largeSizePixels,
    classes: Object.values(CostClass).map((costClass) => ({
      costClass,
      ...b.rules.classes[costClass],
      rangeMin: PUBLISHED_RANGES[costClass].min,
      rangeMax: PUBLISHED_RANGES[costClass].max,
    })),
  };
}

@Resolver()
export class QuoteResolver {
  @Authorized()
  @Query(_returns => CostQuote, { description: 'The price of these settings for the caller, held for 10 minutes.' })
  async quote(
    @Arg('settings', _type => GenerationSettingsInput) settings: GenerationSettingsInput,
    @Arg('workspaceId', _type => ID, { nullable: true, description: "Priced for a workspace's pool, plan and balance (members only)" }) workspaceId: string | null,
    @Ctx() ctx: Context,
  ): Promise<CostQuote> {
    await ctx.services.accounts.ensureOpen(callerId(ctx)); // any role quoting for itself has an account
    const holder = await holderOrThrow(ctx, workspaceId, 'member', ['workspaceId']);
    return ctx.services.quotes.quote(holder.accountId, settings);
  }

  @Query(_returns => PriceBook, { description: 'The current price book. Public.' })
  async priceBook(@Ctx() ctx: Context): Promise<PriceBook> {
    return toPriceBook(await ctx.services.priceBooks.current());
  }

  @Authorized(Role.ADMIN)
  @Mutation(_returns => PublishPriceBookPayload, { description: 'Admin: publish a new price-book version. New quotes use it; earlier quotes keep their price until they expire.' })
  async publishPriceBook(@Arg('input', _type => PublishPriceBookInput) input: PublishPriceBookInput, @Ctx() ctx: Context): Promise<PublishPriceBookPayload> {
    const classes = {} as PriceRules['classes'];
    const errors: UserError[] = [];
    for (const c of input.classes) {
      if (classes[c.costClass]) errors.push(UserError.of(UserErrorCode.INVALID_INPUT, `${c.costClass} is given twice`, ['input', 'classes']));
      classes[c.costClass] = { base: c.base, perExtraSecond: c.perExtraSecond, cap: c.cap ?? null, largeSize: c.largeSize, premiumModel: c.premiumModel, premiumQuality: c.premiumQuality };
    }
    if (errors.length) return { priceBook: null, userErrors: errors };
    const out = await ctx.services.priceBooks.publish(callerId(ctx), { largeSizePixels: input.largeSizePixels, classes }, input.note ?? '');
    return {
      priceBook: out.book ? toPriceBook(out.book) : null,
      userErrors: out.errors.map((e) => UserError.of(UserErrorCode.INVALID_INPUT, e, ['input'])),
    };
  }
}
