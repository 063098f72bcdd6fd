import { Arg, Authorized, Ctx, FieldResolver, ID, Mutation, Resolver, Root } from 'type-graphql';
import { UserError } from '../../../common/errors/user-error.type';
import { UserErrorCode } from '../../../common/errors/user-error-code.enum';
import { callerId, type Context } from '../../../context';
import { Account } from '../../accounts/account.type';
import type { AutoTopUpOutcome } from './auto-top-up.service';
import { AutoTopUp, AutoTopUpPayload, SetAutoTopUpInput } from './auto-top-up.type';

/** No workspace is anyone's yet (workspaces are issue 15): any id answers as an unknown one does. */
const NO_SUCH_WORKSPACE: AutoTopUpOutcome = { error: { code: UserErrorCode.NOT_FOUND, message: 'No workspace of yours has this id', field: ['workspaceId'] } };

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
    if (input.workspaceId != null) return payload({ ...NO_SUCH_WORKSPACE, error: { ...NO_SUCH_WORKSPACE.error!, field: ['input', 'workspaceId'] } });
    await ctx.services.accounts.ensureOpen(callerId(ctx));
    return payload(await ctx.services.autoTopUps.set(callerId(ctx), input));
  }

  @Authorized()
  @Mutation(_returns => AutoTopUpPayload, { description: 'Turns auto top-up off (its settings are kept; a purchase in flight still ends).' })
  async disableAutoTopUp(@Arg('workspaceId', _type => ID, { nullable: true }) workspaceId: string | null, @Ctx() ctx: Context): Promise<AutoTopUpPayload> {
    if (workspaceId != null) return payload(NO_SUCH_WORKSPACE);
    await ctx.services.accounts.ensureOpen(callerId(ctx));
    return payload(await ctx.services.autoTopUps.disable(callerId(ctx)));
  }
}

function payload(out: AutoTopUpOutcome): AutoTopUpPayload {
  return {
    autoTopUp: out.view ? AutoTopUp.of(out.view) : null,
    userErrors: out.error ? [UserError.of(out.error.code, out.error.message, out.error.field)] : [],
  };
}
