import { Arg, Authorized, Ctx, FieldResolver, ID, Mutation, Resolver, Root } from 'type-graphql';
import { UserError } from '../../../common/errors/user-error.type';
import { holderOf } from '../../workspaces/holder';
import { callerId, type Context } from '../../../context';
import { Account } from '../../accounts/account.type';
import type { AutoTopUpOutcome } from './auto-top-up.service';
import { AutoTopUp, AutoTopUpPayload, SetAutoTopUpInput } from './auto-top-up.type';


@Resolver(_of => Account)
export class AccountAutoTopUpResolver {
  @FieldResolver(_returns => AutoTopUp, { nullable: true, description: 'Auto top-up settings; null until set' })
  async autoTopUp(@Root() account: Account, @Ctx() ctx: Context): Promise<AutoTopUp | null> {
    const view = await ctx.services.autoTopUps.view(account.id);
    return view ? AutoTopUp.of(view) : null;
  }
}

@Resolver()
export class AutoTopUpResolver {
  @Authorized()
  @Mutation(_returns => AutoTopUpPayload, { description: 'Turns auto top-up on (or changes it): a pack is bought when a change leaves the balance below belowCredits.' })
  async setAutoTopUp(@Arg('input', _type => SetAutoTopUpInput) input: SetAutoTopUpInput, @Ctx() ctx: Context): Promise<AutoTopUpPayload> {
    await ctx.services.accounts.ensureOpen(callerId(ctx));
    const holder = await holderOf(ctx, input.workspaceId, 'manager', ['input', 'workspaceId']);
    if ('error' in holder) return payload(holder);
    return payload(await ctx.services.autoTopUps.set(holder.accountId, input));
  }

  @Authorized()
  @Mutation(_returns => AutoTopUpPayload, { description: 'Turns auto top-up off (its settings are kept; a purchase in flight still ends).' })
  async disableAutoTopUp(@Arg('workspaceId', _type => ID, { nullable: true }) workspaceId: string | null, @Ctx() ctx: Context): Promise<AutoTopUpPayload> {
    await ctx.services.accounts.ensureOpen(callerId(ctx));
    const holder = await holderOf(ctx, workspaceId, 'manager', ['workspaceId']);
    if ('error' in holder) return payload(holder);
    return payload(await ctx.services.autoTopUps.disable(holder.accountId));
  }
}

function payload(out: AutoTopUpOutcome): AutoTopUpPayload {
  return {
    autoTopUp: out.view ? AutoTopUp.of(out.view) : null,
    userErrors: out.error ? [UserError.of(out.error.code, out.error.message, out.error.field)] : [],
  };
}
